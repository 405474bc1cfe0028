"""``web.run_app``: an app served without gunicorn, in a real process, stopped by
SIGTERM or SIGINT (Ctrl-C) with its hooks run and a clean exit."""

import signal
import subprocess
import sys

import httpx
import pytest

from helpers import APPS_DIR, connect, free_port, read_response, wait_until

STOP_WITHIN = 5  # seconds


def start(app: str = "web_run_app.app", **options) -> subprocess.Popen:
    """``python -c "...web.run_app(app, **options)"`` in the test apps' folder."""
    arguments = "".join(f", {name}={value!r}" for name, value in options.items())
    code = f"import web_run_app\nfrom server import web\nweb.run_app({app}{arguments})"
    return subprocess.Popen([sys.executable, "-c", code], cwd=APPS_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def accepting(port: int) -> bool:
    try:
        connect(port, timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def processes():
    """The run_app processes a test starts; any left running at its end is killed."""
    procs = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def launch(processes):
    """Start run_app on a free port and wait until it accepts connections."""
    def launch_one(app: str = "web_run_app.app", **options):
        port = free_port()
        proc = start(app, host="127.0.0.1", port=port, **options)
        processes.append(proc)
        wait_until(lambda: accepting(port) or proc.poll() is not None, timeout=15, what="run_app listening")
        assert proc.poll() is None, proc.stdout.read()
        return proc, port

    return launch_one


def stop(proc: subprocess.Popen, signum: int) -> str:
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=STOP_WITHIN)
    assert proc.returncode == 0, output
    return output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_and_stops_cleanly_on_a_signal(launch, signum):
    proc, port = launch()
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert response.status_code == 200
    assert response.text == "Hello from run_app"
    output = stop(proc, signum)
    lines = output.splitlines()
    assert lines[:3] == ["startup", f"======== Running on http://127.0.0.1:{port} ========",
                         "(Press CTRL+C to quit)"]
    assert lines[3:] == ["shutdown", "cleanup"]
    assert not accepting(port)


def test_serves_on_a_unix_socket(processes, tmp_path):
    path = str(tmp_path / "app.sock")
    proc = start(path=path)
    processes.append(proc)
    assert proc.stdout.readline() == "startup\n"
    assert proc.stdout.readline() == f"======== Running on http://unix:{path}: ========\n"
    with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=10) as client:
        assert client.get("http://app/").text == "Hello from run_app"
    assert stop(proc, signal.SIGTERM).splitlines()[-2:] == ["shutdown", "cleanup"]


def test_async_factory_is_awaited(launch):
    proc, port = launch("web_run_app.make_app()")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "Hello from run_app"
    assert "cleanup" in stop(proc, signal.SIGTERM)


def test_request_in_flight_finishes_before_the_exit(launch):
    """A busy connection gets its response (with Connection: close); an idle keep-alive
    one is closed."""
    proc, port = launch()
    with connect(port, timeout=10) as idle, connect(port, timeout=10) as sock:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle).status == 200
        sock.sendall(b"GET /slow?seconds=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert proc.stdout.readline() == "startup\n"
        wait_until(lambda: "slow started" in proc.stdout.readline(), timeout=10, what="the handler")
        proc.send_signal(signal.SIGTERM)
        response = read_response(sock)
        assert response.status == 200
        assert response.body == b"slow done"
        assert response.header("Connection") == "close"
        assert read_response(idle) is None
    proc.communicate(timeout=STOP_WITHIN)
    assert proc.returncode == 0


def test_a_handler_past_the_shutdown_timeout_is_cancelled(launch):
    """The handler would sleep 30 s: after shutdown_timeout its connection is closed
    with no response, the handler cancelled, and the hooks still run."""
    proc, port = launch(shutdown_timeout=0.3)
    with connect(port, timeout=10) as sock:
        sock.sendall(b"GET /slow?seconds=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: "slow started" in proc.stdout.readline(), timeout=10, what="the handler")
        output = stop(proc, signal.SIGTERM)
        assert read_response(sock) is None
    assert output.splitlines()[-3:] == ["Shutdown timeout: closing 1 connections", "shutdown", "cleanup"]


def test_a_failed_startup_exits_with_an_error_after_the_cleanups(processes):
    proc = start("web_run_app.failing_app", host="127.0.0.1", port=free_port())
    processes.append(proc)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 1
    assert "RuntimeError: no database" in output
    assert "Running on" not in output
    assert output.splitlines()[-1] == "RuntimeError: no database"
    assert ["startup", "shutdown", "cleanup"] == [line for line in output.splitlines()
                                                   if line in ("startup", "shutdown", "cleanup")]
