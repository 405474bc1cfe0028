"""The worker's configuration, read once: gunicorn's ``cfg`` and the ASYNCWORKER_* variables.

    gunicorn's cfg ──┐
                     ├──► worker_config(cfg, environ) ──► WorkerConfig (frozen)
    ASYNCWORKER_*  ──┘                                        │
                                  server_config(config, log) ◄┘──► the app kinds (apps.py)

This is the module that reads ``cfg``: the protocol and the app layers get
plain values (``Limits``, ``ProxyPolicy``, ``RequestHooks``, ``ServerConfig``...)
and know nothing of gunicorn. The worker itself still hands ``cfg`` to
gunicorn's own hooks (``ssl_context``, ``worker_int``, ``worker_abort``), which
take it as their argument.
"""

import dataclasses
import os
import sys
from dataclasses import dataclass

from gunicorn import glogging
from gunicorn.pidfile import Pidfile

from server.protocol.accesslog import RequestHooks, access_log_enabled
from server.protocol.compiled import PURE_PYTHON_VARIABLE, pure_python_asked, in_use as compiled_in_use
from server.protocol.limits import (DEFAULT_FIELD_SIZE, MAX_HEADERS, MAX_REQUEST_LINE, UNLIMITED_REQUEST_LINE,
                                    Limits)
from server.protocol.forwarded import PROXY_HEADERS_CHOICES, AllowList, ProxyPolicy
from server.protocol.proxyprotocol import PROXY_HEADER_MODES
from server.http2.config import H2Settings, H2Unavailable, require_h2
from server.protocol.server import ServerConfig

from .settings import ConfigError, WorkerSettings, unknown_variables

WS_MAX_MESSAGE_SIZE = 16 * 1024 * 1024  # when gunicorn has no websocket_max_message_size (or it is 0)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything the worker and the apps it serves read from gunicorn and the environment."""

    settings: WorkerSettings  # the ASYNCWORKER_* variables
    limits: Limits  # limit_request_line/_fields/_field_size, and ASYNCWORKER_MAX_BODY_SIZE
    keepalive: float  # idle seconds between requests; 0 = no keep-alive
    scheme: str  # "https" when gunicorn has a certificate (is_ssl), else "http"
    proxy: ProxyPolicy  # forwarded_allow_ips, secure_scheme_headers, forwarder_headers, proxy_protocol...
    refuse_underscores: bool  # header_map = refuse
    threads: int  # WSGI pool threads
    multiprocess: bool  # more than one worker (wsgi.multiprocess)
    script_name: str  # root_path, else $SCRIPT_NAME, without a trailing "/"
    tmp_upload_dir: str | None  # where spooled request bodies go
    sendfile: bool  # gunicorn's sendfile is not turned off (--no-sendfile)
    request_hooks: RequestHooks | None  # pre_request/post_request, when the user set them
    ws_max_message_size: int  # bytes of one WebSocket message (ASGI apps)
    graceful_timeout: float
    worker_connections: int  # at least 1
    backlog: int
    unsupported: tuple  # warnings for gunicorn settings this worker does not offer
    unknown_variables: tuple = ()  # warnings for ASYNCWORKER_* names this worker has no setting for
    read_at_import: tuple = ()  # warnings for variables gunicorn set too late to count (below)
    uwsgi_allow_ips: tuple | None = None  # protocol = uwsgi: the peers that may speak it; None: HTTP
    workers: int = 1  # gunicorn's workers: how many ports the metrics endpoints take
    http2: H2Settings | None = None  # HTTP/2 served (http_protocols has h2, or ASYNCWORKER_HTTP2=1)

    @property
    def warnings(self) -> tuple:
        return self.unknown_variables + self.read_at_import + self.unsupported


def worker_config(cfg, environ=os.environ) -> WorkerConfig:
    """Read gunicorn's ``cfg``, and ``environ`` with gunicorn's ``--env``/``raw_env`` applied.

    gunicorn sets those variables itself only after the worker has chosen its event
    loop, so they are merged here first. Raises ConfigError for a bad ASYNCWORKER_* value.
    """
    environ = {**environ, **(cfg.env or {})}
    settings = WorkerSettings.from_env(environ, loop=getattr(cfg, "asgi_loop", "auto"),
                                       lifespan=getattr(cfg, "asgi_lifespan", "auto"))
    return WorkerConfig(
        settings=settings,
        limits=limits_from_gunicorn(cfg, body=settings.max_body_size),
        keepalive=float(cfg.keepalive),
        scheme="https" if cfg.is_ssl else "http",
        proxy=proxy_policy_from_gunicorn(cfg, settings.proxy_headers, settings.forwarded_host),
        refuse_underscores=getattr(cfg, "header_map", "drop") == "refuse",
        threads=cfg.threads,
        multiprocess=cfg.workers > 1,
        script_name=script_name(cfg, environ),
        tmp_upload_dir=cfg.tmp_upload_dir,
        sendfile=cfg.sendfile is not False,
        request_hooks=request_hooks_from_gunicorn(cfg),
        ws_max_message_size=getattr(cfg, "websocket_max_message_size", None) or WS_MAX_MESSAGE_SIZE,
        graceful_timeout=float(cfg.graceful_timeout),
        worker_connections=max(1, cfg.worker_connections),
        backlog=cfg.backlog,
        unsupported=tuple(unsupported_settings(cfg)),
        unknown_variables=tuple(unknown_variables(environ)),
        read_at_import=tuple(set_after_import(cfg.env or {})),
        uwsgi_allow_ips=uwsgi_from_gunicorn(cfg),
        workers=metrics_ports(settings.metrics_bind, cfg.workers),
        http2=http2_from_gunicorn(cfg, settings.http2),
    )


def set_after_import(gunicorn_env: dict) -> list[str]:
    """A warning when gunicorn's ``--env``/``raw_env`` sets ``ASYNCWORKER_PURE_PYTHON`` to
    other than what it was when gunicorn imported the worker class: the compiled helpers
    were chosen then (server/protocol/compiled.py), and gunicorn sets those variables
    after that import."""
    value = gunicorn_env.get(PURE_PYTHON_VARIABLE)
    if value is None or (value == "1") == pure_python_asked:
        return []
    in_use = "in use" if compiled_in_use() else "not in use"
    return [f"{PURE_PYTHON_VARIABLE}={value} from --env or raw_env has no effect (the compiled helpers "
            f"are {in_use}): it is read as gunicorn imports the worker class, before it sets those; "
            f"set it in gunicorn's own environment"]


def metrics_ports(bind: str, workers: int) -> int:
    """gunicorn's ``workers``, once checked that the metrics ports of that many workers
    (one each, from ASYNCWORKER_METRICS_BIND's port on) exist."""
    workers = max(1, workers)
    if bind and int(bind.rpartition(":")[2]) + workers - 1 > 65535:
        raise ConfigError(f"ASYNCWORKER_METRICS_BIND={bind}: {workers} workers take {workers} ports "
                          f"from that one on, past 65535")
    return workers


CONFIG_ERROR = 1  # the exit status of gunicorn's master for a bad ASYNCWORKER_* value


def check_config(cfg, log, environ=os.environ) -> WorkerConfig:
    """Read the configuration in gunicorn's master, before any worker forks.

    A bad value stops gunicorn with one line naming the variable and what it takes
    (not a traceback per worker); the warnings are logged once.
    """
    try:
        config = worker_config(cfg, environ)
    except ConfigError as exc:
        log.error("%s", exc)
        remove_own_pidfile(cfg)
        sys.exit(CONFIG_ERROR)
    for warning in config.warnings:
        log.warning(warning)
    return config


def remove_own_pidfile(cfg) -> None:
    """The arbiter writes its pidfile before it calls ``check_config``, and removes it
    only when it halts, which leaving from ``check_config`` skips."""
    if not cfg.pidfile:
        return
    for path in (cfg.pidfile, cfg.pidfile + ".2"):  # ".2": the new master of a binary upgrade
        pidfile = Pidfile(path)
        pidfile.pid = os.getpid()
        pidfile.unlink()  # only a file that holds this process's pid


def startup_summary(config: WorkerConfig, kind: str, loop: str) -> str:
    """The one line a worker logs once it knows its app's kind and its loop."""
    settings = config.settings
    body = settings.max_body_size or "unlimited"
    return (f"Worker settings: app kind {kind}, loop {loop}, threads {config.threads}, "
            f"header timeout {settings.header_timeout:g} s, body timeout {settings.body_timeout:g} s, "
            f"max body size {body}, keepalive {config.keepalive:g} s, "
            f"worker_connections {config.worker_connections}, defer accept {settings.defer_accept} s")


def server_config(config: WorkerConfig, log, worker=None) -> ServerConfig:
    """The connection settings every protocol of the worker shares; ``worker`` is what
    gunicorn's request hooks get as their first argument."""
    settings = config.settings
    hooks = config.request_hooks
    if hooks is not None:
        hooks = dataclasses.replace(hooks, worker=worker)
    return ServerConfig(
        limits=config.limits,
        keepalive=config.keepalive,
        head_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        min_request_rate=settings.min_request_rate,
        min_response_rate=settings.min_response_rate,
        rate_grace=settings.rate_grace,
        tcp_keepalive=False,  # (the listeners set it on each socket they accept: listeners.py)
        allowed_methods=settings.allowed_methods,
        debug=settings.debug,
        server_header=settings.server_header.encode("latin-1"),
        scheme=config.scheme,
        proxy=config.proxy,
        refuse_underscores=config.refuse_underscores,
        log=log,
        access_log=logs_each_request(log),
        hooks=hooks,
        sendfile=config.sendfile,
        response_spool_memory=settings.response_spool_memory,
        response_spool_max=settings.response_spool_max,
        response_spool_budget=settings.response_spool_budget,
        spool_dir=config.tmp_upload_dir,
    )


def logs_each_request(log) -> bool:
    """Does gunicorn's logger want ``access()`` for each request? When it writes an access
    log, and when its class does more in ``access()`` than gunicorn's ``Logger`` (statsd's
    request metrics: gunicorn's workers call ``access()`` for every request, and its
    statsd logger sends them whether or not an access log is written)."""
    if access_log_enabled(log):
        return True
    access = getattr(type(log), "access", None)
    return access is not None and access is not glogging.Logger.access


# -- gunicorn's settings as the protocol's values -------------------------------------


def limits_from_gunicorn(cfg, body: int = 0) -> Limits:
    """Read gunicorn's limit_request_* settings with gunicorn's meaning of 0."""
    line = cfg.limit_request_line
    if line == 0:
        line = UNLIMITED_REQUEST_LINE
    elif line < 0 or line > MAX_REQUEST_LINE:
        line = MAX_REQUEST_LINE
    fields = cfg.limit_request_fields
    if fields <= 0 or fields > MAX_HEADERS:
        fields = MAX_HEADERS
    field_size = cfg.limit_request_field_size
    if field_size <= 0:
        field_size = DEFAULT_FIELD_SIZE
    return Limits(request_line=line, fields=fields, field_size=field_size, body=body)


def proxy_policy_from_gunicorn(cfg, proxy_headers: str = "off", forwarded_host: bool = False) -> ProxyPolicy:
    """Whom to believe about the client: forwarded headers and the PROXY protocol. The
    defaults believe what gunicorn does (the scheme); the client address and host only
    when asked (``ASYNCWORKER_PROXY_HEADERS``, ``ASYNCWORKER_FORWARDED_HOST``)."""
    if proxy_headers not in PROXY_HEADERS_CHOICES:
        raise ValueError(f"proxy_headers must be one of {', '.join(PROXY_HEADERS_CHOICES)}")
    mode = getattr(cfg, "proxy_protocol", "off")
    mode = {True: "auto", False: "off", None: "off"}.get(mode, mode)
    return ProxyPolicy(
        forwarded_allow=AllowList(cfg.forwarded_allow_ips),
        secure_scheme_headers=tuple((k.upper(), v) for k, v in (cfg.secure_scheme_headers or {}).items()),
        forwarder_headers=frozenset(h.strip().upper() for h in cfg.forwarder_headers or () if h.strip()),
        proxy_headers=proxy_headers,
        forwarded_host=forwarded_host,
        proxy_protocol=mode if mode in PROXY_HEADER_MODES else "auto",
        proxy_allow=AllowList(getattr(cfg, "proxy_allow_ips", "127.0.0.1,::1")),
    )


def request_hooks_from_gunicorn(cfg) -> RequestHooks | None:
    """gunicorn's pre_request/post_request hooks; None when both are left at gunicorn's default."""
    pre, post = (getattr(cfg, name) for name in ("pre_request", "post_request"))
    pre = None if pre is cfg.settings["pre_request"].default else pre
    post = None if post is cfg.settings["post_request"].default else post
    return RequestHooks(pre, post) if pre or post else None


def script_name(cfg, environ=os.environ) -> str:
    """Where the app is mounted: gunicorn's root_path, else $SCRIPT_NAME."""
    root = getattr(cfg, "root_path", "") or environ.get("SCRIPT_NAME", "")
    return root.rstrip("/")


# gunicorn settings that loosen its parser: this worker's parser never does (a request
# read one way here and another way by a proxy in front is how smuggling starts).
LENIENT_SETTINGS = {
    "permit_obsolete_folding": "obs-fold lines still get a 400",
    "strip_header_spaces": "whitespace before a colon still gets a 400",
    "permit_unconventional_http_method": "methods stay tokens of RFC 9110",
    "casefold_http_method": "methods are taken as sent",
}


# gunicorn settings this worker has nothing for yet: a warning when set away from their default.
NOT_YET_SETTINGS = {
    "asgi_disconnect_grace_period": "an ASGI app is never cancelled when its client goes away: "
                                    "it gets http.disconnect, and send() raises, until it returns",
}


def unsupported_settings(cfg) -> list[str]:
    """Warnings for gunicorn settings set to a leniency or a feature this worker does not offer."""
    warnings = [f"{name} is not supported by this worker: {why}"
                for name, why in LENIENT_SETTINGS.items() if getattr(cfg, name, False)]
    if getattr(cfg, "header_map", "drop") == "dangerous":
        warnings.append("header_map = dangerous is not supported by this worker: "
                        "header names with '_' are dropped (as with 'drop')")
    warnings += [f"{name} is not supported by this worker: {why}" for name, why in _changed_not_yet(cfg)]
    return warnings


def _changed_not_yet(cfg):
    """(name, why) of the NOT_YET_SETTINGS that ``cfg`` sets away from gunicorn's default."""
    for name in sorted(cfg.settings):
        prefix = next((p for p in NOT_YET_SETTINGS if name.startswith(p)), None)
        if prefix is None:
            continue
        setting = cfg.settings[name]
        if setting.get() != setting.validator(setting.default):
            yield name, NOT_YET_SETTINGS[prefix]


def http2_from_gunicorn(cfg, forced: bool = False) -> H2Settings | None:
    """gunicorn's HTTP/2 settings (25+; read with their defaults from an older gunicorn, where
    ``ASYNCWORKER_HTTP2=1`` turns HTTP/2 on); None when HTTP/2 is off. Raises ConfigError
    when it is on and the h2 package is missing."""
    if "h2" not in (getattr(cfg, "http_protocols", None) or ()) and not forced:
        return None
    try:
        require_h2()
    except H2Unavailable as exc:
        raise ConfigError(str(exc)) from None
    cleartext = getattr(cfg, "http2_cleartext", None)
    prior_knowledge = cleartext in ("prior-knowledge", "both") or (cleartext is None and forced)
    return H2Settings(
        prior_knowledge=prior_knowledge and getattr(cfg, "protocol", "http") != "uwsgi",
        upgrade=cleartext in ("upgrade", "both") and getattr(cfg, "protocol", "http") != "uwsgi",
        max_concurrent_streams=getattr(cfg, "http2_max_concurrent_streams", 100),
        initial_window_size=getattr(cfg, "http2_initial_window_size", 65535),
        max_frame_size=getattr(cfg, "http2_max_frame_size", 16384),
        max_header_list_size=getattr(cfg, "http2_max_header_list_size", 65536),
    )


def uwsgi_from_gunicorn(cfg) -> tuple | None:
    """gunicorn's ``protocol``: for ``uwsgi``, its ``uwsgi_allow_ips``; None for anything
    else (HTTP, as in gunicorn). Raises ConfigError for uwsgi with the PROXY protocol, which
    gunicorn's uwsgi parser does not read either (TLS is fine, as in gunicorn)."""
    if getattr(cfg, "protocol", "http") != "uwsgi":
        return None
    if proxy_policy_from_gunicorn(cfg).proxy_protocol != "off":
        raise ConfigError("protocol = uwsgi cannot be used with proxy_protocol: "
                         "gunicorn reads no PROXY header before a uwsgi packet; turn one of them off")
    allow = getattr(cfg, "uwsgi_allow_ips", None)
    if allow is None:
        allow = ["127.0.0.1", "::1"]
    return tuple(allow.split(",") if isinstance(allow, str) else allow)
