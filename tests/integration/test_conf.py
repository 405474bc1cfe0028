"""conf/: the gunicorn configuration files users start from, loaded by a real gunicorn."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import APPS_DIR, Gunicorn, connect, read_response, wait_until

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "conf" / "gunicorn.conf.py"
DEVELOPMENT = ROOT / "conf" / "gunicorn.dev.conf.py"
APP = "proxy_app:app"


def printed_config(conf: Path, env: dict | None = None) -> dict:
    """The settings gunicorn itself derives from ``conf`` (``--print-config``)."""
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--print-config", "-c", str(conf),
                             "--chdir", str(APPS_DIR), APP],
                            capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    values = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


def get(port: int, path: str = "/", headers: str = ""):
    with connect(port, timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        return read_response(sock)


def test_production_values():
    config = printed_config(PRODUCTION)
    assert config["worker_class"] == "server.workers.AsyncWorker"
    assert int(config["workers"]) == len(os.sched_getaffinity(0))
    assert int(config["keepalive"]) > 60  # above nginx's and AWS ALB's idle timeouts
    assert int(config["graceful_timeout"]) <= int(config["timeout"])
    # deploy/nginx-app.conf overwrites X-Forwarded-For/-Host/-Port: read them (off by default)
    assert "ASYNCWORKER_PROXY_HEADERS=x-forwarded" in config["raw_env"]
    assert "ASYNCWORKER_FORWARDED_HOST=1" in config["raw_env"]
    assert printed_config(PRODUCTION, {"WEB_CONCURRENCY": "3"})["workers"] == "3"


def test_production_conf_serves_with_its_log_format_and_proxy_trust():
    # The harness's own -b, --workers and --threads override the file, as on any command line.
    with Gunicorn(APP, "-c", str(PRODUCTION)) as gunicorn:
        response = get(gunicorn.port, "/conf", "X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n")
        wait_until(lambda: '"GET /conf HTTP/1.1" 200' in gunicorn.log_text(), 10, what="access log line")
        log = gunicorn.log_text()
    environ = json.loads(response.body)
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("198.51.100.7", "https")
    line = next(line for line in log.splitlines() if '"GET /conf HTTP/1.1"' in line)
    assert line.startswith('198.51.100.7 "GET /conf HTTP/1.1" 200 ')
    assert "ms " in line


def test_production_conf_tells_systemd_the_new_master_after_usr2(tmp_path):
    """USR2 starts a new master; its when_ready hook sends MAINPID so systemd follows it."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(20)
        gunicorn = Gunicorn(APP, "-c", str(PRODUCTION), env={"NOTIFY_SOCKET": str(path)})
        # The console script, as in deploy/app.service: USR2 re-executes the master's own command
        # line, and "python -m gunicorn" would come back as a script inside gunicorn's package.
        assert gunicorn.cmd[:3] == [sys.executable, "-m", "gunicorn"]
        gunicorn.cmd[:3] = [str(Path(sys.executable).parent / "gunicorn")]
        children = []
        with gunicorn:
            try:
                assert "READY=1" in listener.recv(4096).decode()
                gunicorn.signal(signal.SIGUSR2)
                fields = {}
                while "MAINPID" not in fields:  # the new master's arbiter says READY=1 first
                    fields = dict(line.split("=", 1) for line in listener.recv(4096).decode().splitlines())
                new_master = int(fields["MAINPID"])
                assert new_master in gunicorn.worker_pids()  # a child of the old master
                assert fields["READY"] == "1"
                assert get(gunicorn.port).status == 200
            finally:
                children = gunicorn.worker_pids()  # the old workers and the new master, if any
    for pid in children:  # the new master outlives the old one: stop it and its workers too
        _stop(pid)


def _stop(pid: int) -> None:
    """TERM a master this test caused to exist, and wait until it is gone (or a zombie)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def gone() -> bool:
        try:
            return "zombie" in Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True

    wait_until(gone, 20, what=f"master {pid} to exit")


def test_development_conf_reloads_changed_code(tmp_path):
    module = tmp_path / "devapp.py"
    module.write_text(_dev_app("first"))
    with Gunicorn("devapp:app", "-c", str(DEVELOPMENT), chdir=str(tmp_path)) as gunicorn:
        assert get(gunicorn.port).body == b"first"
        # gunicorn's polling reloader compares each file's mtime with the one it saw on its
        # first pass, which a loaded machine may run late: write again until it notices.
        deadline = time.monotonic() + 30
        while _body(gunicorn.port) != b"second":
            assert time.monotonic() < deadline, f"code not reloaded; log:\n{gunicorn.log_text()[-3000:]}"
            module.write_text(_dev_app("second"))
            time.sleep(1.5)
        failing = get(gunicorn.port, "/fail")
    assert failing.status == 500
    assert b"Traceback" in failing.body  # ASYNCWORKER_DEBUG=1


def _body(port: int) -> bytes | None:
    try:
        return get(port).body
    except (OSError, ValueError):  # between two workers
        return None


def _dev_app(text: str) -> str:
    return (
        "def app(environ, start_response):\n"
        "    if environ['PATH_INFO'] == '/fail':\n"
        "        raise RuntimeError('boom')\n"
        "    start_response('200 OK', [('Content-Length', '%d')])\n"
        "    return [b'%s']\n" % (len(text), text))


@pytest.mark.parametrize("conf", [PRODUCTION, DEVELOPMENT])
def test_conf_files_name_no_unknown_setting(conf):
    from gunicorn.config import Config
    namespace = {"__file__": str(conf), "__name__": "__config__"}
    exec(compile(conf.read_text(), str(conf), "exec"), namespace)
    names = {name for name, value in namespace.items()
             if not name.startswith("_") and not isinstance(value, type(os))}  # modules are imports
    assert names <= set(Config().settings), names - set(Config().settings)
