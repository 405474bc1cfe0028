"""The worker's configuration read from a real gunicorn ``Config`` and an environment mapping."""

import dataclasses

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from server.protocol.compiled import pure_python_asked
from server.protocol.limits import MAX_HEADERS, Limits
from server.workers.config import (CONFIG_ERROR, WS_MAX_MESSAGE_SIZE, check_config, proxy_policy_from_gunicorn,
                                   request_hooks_from_gunicorn, server_config, startup_summary, worker_config)
from server.workers.settings import WorkerSettings


def gunicorn_config(**settings) -> Config:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def pre_request(worker, req):
    pass


def test_gunicorn_defaults():
    config = worker_config(Config(), {})
    assert config.settings == WorkerSettings()
    assert config.limits == Limits()
    assert (config.keepalive, config.scheme, config.refuse_underscores) == (2.0, "http", False)
    assert (config.threads, config.multiprocess, config.script_name) == (1, False, "")
    assert (config.tmp_upload_dir, config.sendfile, config.request_hooks) == (None, True, None)
    assert (config.ws_max_message_size, config.graceful_timeout) == (WS_MAX_MESSAGE_SIZE, 30.0)
    assert (config.worker_connections, config.backlog, config.unsupported) == (1000, 2048, ())
    assert config.proxy.forwarded_allow.allows_ip("127.0.0.1")
    assert not config.proxy.forwarded_allow.allows_ip("10.0.0.1")
    # gunicorn's own defaults: the scheme from a trusted proxy, the address and host not
    assert (config.proxy.proxy_headers, config.proxy.forwarded_host, config.proxy.proxy_protocol) == (
        "off", False, "off")


def test_gunicorn_settings_keep_their_meaning():
    cfg = gunicorn_config(keepalive=5, threads=4, workers=3, root_path="/app/", tmp_upload_dir="/tmp",
                          sendfile=False, header_map="refuse", websocket_max_message_size=4096,
                          graceful_timeout=7, worker_connections=0, backlog=16, limit_request_fields=0,
                          certfile="server.pem", proxy_protocol=True, forwarded_allow_ips="10.0.0.0/8")
    config = worker_config(cfg, {})
    assert (config.keepalive, config.scheme, config.refuse_underscores) == (5.0, "https", True)
    assert (config.threads, config.multiprocess, config.script_name) == (4, True, "/app")
    assert (config.tmp_upload_dir, config.sendfile) == ("/tmp", False)
    assert (config.ws_max_message_size, config.graceful_timeout) == (4096, 7.0)
    assert (config.worker_connections, config.backlog) == (1, 16)  # at least one connection
    assert config.limits.fields == MAX_HEADERS  # 0: unlimited, as gunicorn has it
    assert config.proxy.proxy_protocol == "auto" and config.proxy.forwarded_allow.allows_ip("10.1.2.3")


def test_environment_and_gunicorn_env_give_the_worker_settings():
    cfg = gunicorn_config(raw_env=["ASYNCWORKER_DEBUG=1", "ASYNCWORKER_MAX_BODY_SIZE=10"])
    environ = {"ASYNCWORKER_DEBUG": "0", "ASYNCWORKER_PROXY_HEADERS": "forwarded", "SCRIPT_NAME": "/mount/"}
    config = worker_config(cfg, environ)
    assert config.settings.debug is True  # --env wins over the inherited environment
    assert config.limits.body == 10 and config.proxy.proxy_headers == "forwarded"
    assert config.script_name == "/mount"
    assert worker_config(gunicorn_config(root_path="/root"), environ).script_name == "/root"


def test_a_bad_variable_is_named():
    with pytest.raises(ValueError, match="ASYNCWORKER_LIFESPAN"):
        worker_config(Config(), {"ASYNCWORKER_LIFESPAN": "maybe"})


def test_request_hooks_only_when_set():
    assert request_hooks_from_gunicorn(Config()) is None
    hooks = request_hooks_from_gunicorn(gunicorn_config(pre_request=pre_request))
    assert (hooks.pre_request, hooks.post_request) == (pre_request, None)


def test_forwarded_host_is_read_only_with_a_family_to_read_it_from():
    environ = {"ASYNCWORKER_PROXY_HEADERS": "x-forwarded", "ASYNCWORKER_FORWARDED_HOST": "1"}
    proxy = worker_config(Config(), environ).proxy
    assert (proxy.proxy_headers, proxy.forwarded_host) == ("x-forwarded", True)
    assert "X-Forwarded-Host" in proxy.watched
    with pytest.raises(ValueError, match="ASYNCWORKER_FORWARDED_HOST=1 .* ASYNCWORKER_PROXY_HEADERS"):
        worker_config(Config(), {"ASYNCWORKER_FORWARDED_HOST": "1"})


def test_proxy_headers_mode_is_checked():
    with pytest.raises(ValueError, match="proxy_headers must be one of"):
        proxy_policy_from_gunicorn(Config(), "x-real-ip")


def test_lenient_gunicorn_settings_are_reported():
    config = worker_config(gunicorn_config(permit_obsolete_folding=True, header_map="dangerous"), {})
    assert config.unsupported == (
        "permit_obsolete_folding is not supported by this worker: obs-fold lines still get a 400",
        "header_map = dangerous is not supported by this worker: header names with '_' are dropped "
        "(as with 'drop')")


def test_the_configuration_is_frozen():
    config = worker_config(Config(), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.keepalive = 0.0


def test_server_config_takes_its_values_from_the_configuration():
    config = worker_config(gunicorn_config(keepalive=0), {"ASYNCWORKER_SERVER_HEADER": "edge",
                                                          "ASYNCWORKER_ALLOWED_METHODS": "get",
                                                          "ASYNCWORKER_HEADER_TIMEOUT": "3"})
    log = object()
    server = server_config(config, log)
    assert (server.limits, server.keepalive, server.proxy, server.log) == (config.limits, 0.0, config.proxy, log)
    assert (server.server_header, server.allowed_methods, server.head_timeout) == (b"edge", {"GET"}, 3.0)
    assert (server.access_log, server.hooks, server.sendfile) == (False, None, True)


def test_the_request_hooks_of_the_server_config_get_the_worker():
    config = worker_config(gunicorn_config(pre_request=pre_request), {})
    worker = object()
    hooks = server_config(config, object(), worker).hooks
    assert (hooks.pre_request, hooks.post_request, hooks.worker) == (pre_request, None, worker)


def test_gunicorn_asgi_loop_and_lifespan_choose_the_loop_and_the_lifespan():
    config = worker_config(gunicorn_config(asgi_loop="asyncio", asgi_lifespan="off"), {})
    assert (config.settings.loop, config.settings.lifespan) == ("asyncio", "off")


def test_the_variables_win_over_gunicorn_asgi_settings():
    cfg = gunicorn_config(asgi_loop="asyncio", asgi_lifespan="off",
                          raw_env=["ASYNCWORKER_LIFESPAN=on"])
    config = worker_config(cfg, {"ASYNCWORKER_LOOP": "uvloop"})
    assert (config.settings.loop, config.settings.lifespan) == ("uvloop", "on")


def test_gunicorn_settings_this_worker_has_nothing_for_are_reported():
    cfg = gunicorn_config(http_protocols="h2,h1", http2_max_frame_size=32768, asgi_disconnect_grace_period=5)
    assert worker_config(cfg, {}).unsupported == (
        "asgi_disconnect_grace_period is not supported by this worker: an ASGI app is never cancelled "
        "when its client goes away: it gets http.disconnect, and send() raises, until it returns",)


def test_warnings_name_unknown_variables_then_unsupported_settings():
    cfg = gunicorn_config(permit_obsolete_folding=True, raw_env=["ASYNCWORKER_LOPP=asyncio"])
    assert worker_config(cfg, {}).warnings == (
        "ASYNCWORKER_LOPP is not a setting of this worker, ignored: did you mean ASYNCWORKER_LOOP?",
        "permit_obsolete_folding is not supported by this worker: obs-fold lines still get a 400")


def test_pure_python_set_by_gunicorn_env_is_reported_as_too_late():
    """gunicorn applies --env and raw_env after it imports the worker class, which is when
    the compiled helpers are chosen: a value other than the one read then has no effect."""
    other = "0" if pure_python_asked else "1"
    late = worker_config(gunicorn_config(raw_env=[f"ASYNCWORKER_PURE_PYTHON={other}"]), {}).warnings
    assert len(late) == 1 and late[0].startswith(
        f"ASYNCWORKER_PURE_PYTHON={other} from --env or raw_env has no effect (the compiled helpers are ")
    same = "1" if pure_python_asked else "0"
    assert worker_config(gunicorn_config(raw_env=[f"ASYNCWORKER_PURE_PYTHON={same}"]), {}).warnings == ()
    assert worker_config(Config(), {"ASYNCWORKER_PURE_PYTHON": "1"}).warnings == ()  # (a known name)


def test_the_startup_summary_names_the_kind_the_loop_and_the_limits():
    config = worker_config(gunicorn_config(threads=8, keepalive=75, worker_connections=50),
                           {"ASYNCWORKER_MAX_BODY_SIZE": "1024", "ASYNCWORKER_HEADER_TIMEOUT": "2.5"})
    assert startup_summary(config, "wsgi", "uvloop") == (
        "Worker settings: app kind wsgi, loop uvloop, threads 8, header timeout 2.5 s, body timeout 30 s, "
        "max body size 1024, keepalive 75 s, worker_connections 50, defer accept 1 s")
    assert "max body size unlimited" in startup_summary(worker_config(Config(), {}), "asgi", "asyncio")


def logged(capfd) -> list[str]:
    """The lines gunicorn's logger wrote to stderr, without their date and pid."""
    return [line.split("] ", 2)[2] for line in capfd.readouterr().err.splitlines()]


def test_check_config_stops_on_a_bad_value_with_one_line(capfd):
    cfg = gunicorn_config(raw_env=["ASYNCWORKER_LOOP=uvlop"])
    with pytest.raises(SystemExit) as exit_:
        check_config(cfg, Logger(cfg), {})
    assert exit_.value.code == CONFIG_ERROR != 0
    assert logged(capfd) == ["[ERROR] Invalid value for ASYNCWORKER_LOOP: 'uvlop' "
                             "(expected one of auto, uvloop, asyncio)"]


def test_check_config_logs_the_warnings_once(capfd):
    cfg = Config()
    config = check_config(cfg, Logger(cfg), {"ASYNCWORKER_DEBGU": "1"})
    assert config.settings == WorkerSettings()
    assert logged(capfd) == ["[WARNING] ASYNCWORKER_DEBGU is not a setting of this worker, ignored: "
                             "did you mean ASYNCWORKER_DEBUG?"]
