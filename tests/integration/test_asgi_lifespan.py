"""The ASGI lifespan with ASYNCWORKER_LIFESPAN auto, on and off, on a real gunicorn."""

import httpx
import pytest
from gunicorn.arbiter import Arbiter

from helpers import BOOT_LINE, Gunicorn, wait_until


def failed_boot(app: str, *args: str, env: dict | None = None) -> Gunicorn:
    """Start gunicorn, which must exit by itself; return it for its log and status."""
    server = Gunicorn(app, *args, env=env)
    with pytest.raises(RuntimeError, match="gunicorn failed to start"):
        with server:
            pass
    return server


def test_failed_startup_halts_gunicorn_instead_of_respawning():
    server = failed_boot("asgi_lifespan_apps:failing_startup")
    log = server.log_text()
    assert server.proc.returncode == Arbiter.WORKER_BOOT_ERROR
    assert "ASGI lifespan startup failed, stopping the worker: database unreachable" in log
    assert "Worker failed to boot" in log
    assert log.count(BOOT_LINE) == 1, log


def test_lifespan_on_requires_support():
    server = failed_boot("asgi_lifespan_apps:raising_lifespan", env={"ASYNCWORKER_LIFESPAN": "on"})
    log = server.log_text()
    assert server.proc.returncode == Arbiter.WORKER_BOOT_ERROR
    assert "ASGI lifespan startup failed, stopping the worker: the app raised RuntimeError(" in log
    assert log.count(BOOT_LINE) == 1, log


def test_lifespan_on_with_an_app_that_supports_it():
    with Gunicorn("asgi_starlette:app", env={"ASYNCWORKER_LIFESPAN": "on"}) as server:
        assert httpx.get(server.base_url + "/state", timeout=10).json()["started"] is True
    assert "ASGI lifespan startup complete" in server.log_text()


def test_lifespan_auto_tolerates_an_app_without_it():
    with Gunicorn("asgi_lifespan_apps:raising_lifespan") as server:
        assert httpx.get(server.base_url, timeout=10).text == "lifespan calls: 1"
    assert "ASGI lifespan not supported by the app" in server.log_text()


def test_lifespan_off_sends_no_lifespan_scope():
    with Gunicorn("asgi_lifespan_apps:raising_lifespan", env={"ASYNCWORKER_LIFESPAN": "off"}) as server:
        assert httpx.get(server.base_url, timeout=10).text == "lifespan calls: 0"
    assert "ASGI lifespan" not in server.log_text()


def test_failed_startup_is_fatal_in_auto_mode_too():
    """An app that answers lifespan.startup.failed supports lifespan and asked to stop."""
    server = failed_boot("asgi_lifespan_apps:failing_startup", env={"ASYNCWORKER_LIFESPAN": "auto"})
    assert server.proc.returncode == Arbiter.WORKER_BOOT_ERROR


def test_shutdown_is_bounded_by_graceful_timeout():
    """A worker leaving by itself (max_requests) waits graceful_timeout for the lifespan
    shutdown, then exits (on SIGTERM gunicorn's master enforces the same bound by a kill)."""
    with Gunicorn("asgi_lifespan_apps:hanging_shutdown", "--graceful-timeout", "1",
                  "--max-requests", "1") as server:
        pid = server.worker_pids()[0]
        assert httpx.get(server.base_url, timeout=10).text == "up"
        wait_until(lambda: f"Worker exiting (pid: {pid})" in server.log_text(), 20, what="the worker's exit")
        log = server.log_text()
    assert "ASGI lifespan shutdown did not complete within 1.0 s" in log
