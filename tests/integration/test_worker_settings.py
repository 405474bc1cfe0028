"""gunicorn's ASGI settings, warnings and configuration errors, on a real gunicorn."""

import os
import signal
import subprocess
import sys

import httpx
import pytest
from gunicorn.arbiter import Arbiter

from helpers import APPS_DIR, BOOT_LINE, WORKER, Gunicorn, free_port

APP = "config_apps:marker_lifespan"


def serve(tmp_path, *args: str, env: dict | None = None) -> tuple[str, bool, str]:
    """(the loop module the app runs on, whether its lifespan startup ran, the log)."""
    marker = tmp_path / "started"
    with Gunicorn(APP, *args, env={"MARKER_FILE": str(marker), **(env or {})}) as server:
        loop = httpx.get(server.base_url, timeout=10).text
    return loop, marker.exists(), server.log_text()


def run_gunicorn(app: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A gunicorn that must stop by itself; its status and output."""
    cmd = [sys.executable, "-m", "gunicorn", "-k", WORKER, "--no-control-socket", "-b",
           f"127.0.0.1:{free_port()}", "--chdir", str(APPS_DIR), *args, app]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def messages(output: str, level: str) -> list[str]:
    """The messages of ``level`` in gunicorn's log lines, without date and pid."""
    return [line.split(f"[{level}] ", 1)[1] for line in output.splitlines() if f"[{level}] " in line]


def test_asgi_lifespan_off_runs_no_startup(tmp_path):
    assert serve(tmp_path, "--asgi-lifespan", "off")[1] is False
    assert serve(tmp_path, "--asgi-lifespan", "auto")[1] is True


def test_asyncworker_lifespan_wins_over_asgi_lifespan(tmp_path):
    assert serve(tmp_path, "--asgi-lifespan", "off", env={"ASYNCWORKER_LIFESPAN": "auto"})[1] is True


def test_asgi_loop_asyncio_runs_asyncio(tmp_path):
    pytest.importorskip("uvloop", reason="without uvloop every loop is asyncio's")
    assert serve(tmp_path)[0] == "uvloop"
    assert serve(tmp_path, "--asgi-loop", "asyncio")[0] == "asyncio.unix_events"


def test_asyncworker_loop_wins_over_asgi_loop(tmp_path):
    pytest.importorskip("uvloop", reason="without uvloop every loop is asyncio's")
    assert serve(tmp_path, "--asgi-loop", "asyncio", env={"ASYNCWORKER_LOOP": "uvloop"})[0] == "uvloop"


def test_settings_this_worker_has_nothing_for_are_warned_once(tmp_path):
    log = serve(tmp_path, "--http2-max-frame-size", "32768", "--asgi-disconnect-grace-period", "5")[2]
    assert messages(log, "WARNING") == [
        "asgi_disconnect_grace_period is not supported by this worker: an ASGI app is never cancelled "
        "when its client goes away: it gets http.disconnect, and send() raises, until it returns"]


def test_a_misspelled_variable_is_warned_with_the_closest_name(tmp_path):
    log = serve(tmp_path, "--env", "ASYNCWORKER_HEADR_TIMEOUT=5")[2]
    assert messages(log, "WARNING") == [
        "ASYNCWORKER_HEADR_TIMEOUT is not a setting of this worker, ignored: did you mean ASYNCWORKER_HEADER_TIMEOUT?"]


def test_the_worker_logs_its_kind_loop_and_limits(tmp_path):
    log = serve(tmp_path, "--asgi-loop", "asyncio", "--keep-alive", "7", "--worker-connections", "20",
                env={"ASYNCWORKER_MAX_BODY_SIZE": "1000", "ASYNCWORKER_BODY_TIMEOUT": "4",
                     "ASYNCWORKER_DEFER_ACCEPT": "3"})[2]
    assert ("Worker settings: app kind asgi, loop asyncio, threads 4, header timeout 10 s, body timeout 4 s, "
            "max body size 1000, keepalive 7 s, worker_connections 20, defer accept 3 s") in messages(log, "INFO")


@pytest.mark.parametrize("args, env, message", [
    ((), {"ASYNCWORKER_LOOP": "uvlop"},
     "Invalid value for ASYNCWORKER_LOOP: 'uvlop' (expected one of auto, uvloop, asyncio)"),
    (("--env", "ASYNCWORKER_HEADER_TIMEOUT=soon"), {},
     "Invalid value for ASYNCWORKER_HEADER_TIMEOUT: 'soon' (expected a number of seconds >= 0)"),
])
def test_a_bad_value_stops_gunicorn_before_any_worker(args, env, message):
    result = run_gunicorn(APP, *args, env=env)
    assert result.returncode == 1
    assert messages(result.stderr, "ERROR") == [message]
    assert "Traceback" not in result.stderr and BOOT_LINE not in result.stderr


def test_a_bad_value_leaves_no_pidfile(tmp_path):
    pidfile = tmp_path / "gunicorn.pid"
    result = run_gunicorn(APP, "--pid", str(pidfile), env={"ASYNCWORKER_DEBUG": "maybe"})
    assert result.returncode == 1 and not pidfile.exists()


def test_a_bad_value_brought_by_a_reload_stops_the_worker_with_one_line(tmp_path):
    """HUP reloads the configuration without the master's check: the worker checks it."""
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("raw_env = []\n")
    with Gunicorn(APP, "-c", str(conf), env={"MARKER_FILE": str(tmp_path / "started")}) as server:
        conf.write_text("raw_env = ['ASYNCWORKER_LOOP=uvlop']\n")
        server.signal(signal.SIGHUP)
        assert server.proc.wait(30) == Arbiter.WORKER_BOOT_ERROR
        log = server.log_text()
    assert messages(log, "ERROR")[0] == (
        "Invalid value for ASYNCWORKER_LOOP: 'uvlop' (expected one of auto, uvloop, asyncio)")
    assert "Traceback" not in log


@pytest.mark.parametrize("app, signature", [("no_arguments", "()"), ("one_argument", "(environ)")])
def test_an_app_no_kind_can_serve_is_refused_at_boot(app, signature):
    result = run_gunicorn(f"config_apps:{app}")
    assert result.returncode == Arbiter.WORKER_BOOT_ERROR
    assert (f"The app {app} fits no app kind, stopping the worker: it takes {signature}, "
            "not (environ, start_response). A WSGI app takes") in result.stderr
    assert "Traceback" not in result.stderr and "Reason: Worker failed to boot." in result.stderr
