"""systemd: socket activation (LISTEN_FDS) and readiness (NOTIFY_SOCKET) with a real gunicorn,
and the deploy/ unit files checked by ``systemd-analyze verify``."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BOOT_LINE, Gunicorn, connect, read_response

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
APP = "proxy_app:app"

# Binds the listening socket, puts it at fd 3 and execs gunicorn, so that
# LISTEN_PID is gunicorn's own pid: what systemd does for a socket unit.
WRAPPER = """
import os, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
sock = socket.socket()
sock.bind((host, int(port)))
sock.listen(128)
os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)  # dup2 onto itself (the socket may already be fd 3) keeps close-on-exec
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def without_bind(cmd: list[str]) -> list[str]:
    """gunicorn's argv (after the interpreter) without its -b: the socket must come from fd 3."""
    args = cmd[1:]
    index = args.index("-b")
    return args[:index] + args[index + 2:]


def get(port: int, path: str = "/"):
    with connect(port, timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return read_response(sock)


def test_listen_fds_from_a_wrapper_that_execs_gunicorn():
    gunicorn = Gunicorn(APP)
    argv = without_bind(gunicorn.cmd)
    assert not any(str(gunicorn.port) in arg for arg in argv)  # gunicorn can only learn the port from fd 3
    gunicorn.cmd = [sys.executable, "-c", WRAPPER, f"127.0.0.1:{gunicorn.port}", *argv]
    with gunicorn:
        assert get(gunicorn.port).status == 200
        log = gunicorn.log_text()
    assert f"Listening at: http://127.0.0.1:{gunicorn.port}" in log


class ActivatedGunicorn(Gunicorn):
    """gunicorn behind ``systemd-socket-activate``, which starts it on the first connection."""

    def __init__(self, app: str):
        super().__init__(app)
        self.cmd = ["systemd-socket-activate", "-l", f"127.0.0.1:{self.port}",
                    *[f"--setenv={name}" for name in ("PYTHONPATH", "VIRTUAL_ENV") if name in os.environ],
                    sys.executable, *without_bind(self.cmd)]
        self.first: list = []

    def _booted(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"systemd-socket-activate exited with status {self.proc.returncode}")
        if not self.first:
            try:  # the first request: it starts gunicorn and waits in the backlog meanwhile
                self.first.append(get(self.port, "/activated"))
            except ConnectionRefusedError:  # not listening yet
                return False
        return BOOT_LINE in self.log_text()


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate not installed (Debian package: systemd)")
def test_systemd_socket_activate():
    with ActivatedGunicorn(APP) as gunicorn:
        [first] = gunicorn.first
        assert "Execing" in gunicorn.log_text()  # gunicorn was started by that connection
        assert get(gunicorn.port).status == 200
        log = gunicorn.log_text()
    assert first.status == 200
    assert json.loads(first.body)["PATH_INFO"] == "/activated"
    assert f"Listening at: http://127.0.0.1:{gunicorn.port}" in log


def test_readiness_notification_on_a_real_datagram_socket(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(20)
        with Gunicorn(APP, env={"NOTIFY_SOCKET": str(path)}) as gunicorn:
            message = listener.recv(4096).decode()
            assert get(gunicorn.port).status == 200
    assert "READY=1" in message.splitlines()


def unit_copy(tmp_path: Path) -> Path:
    """deploy/ units in a scratch directory, ExecStart pointing at a gunicorn that exists here."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    assert gunicorn, "gunicorn executable not found next to the test interpreter"
    for name in ("app.service", "app.socket"):
        text = (DEPLOY / name).read_text().replace("/srv/app/.venv/bin/gunicorn", gunicorn)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package: systemd; .ci/run installs it as root)")
def test_unit_files_pass_systemd_analyze_verify(tmp_path):
    units = unit_copy(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", str(units / "app.socket"), str(units / "app.service")],
                            capture_output=True, text=True, timeout=60, cwd=units)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warning either


def test_unit_files_make_the_choices_the_readme_explains():
    service = (DEPLOY / "app.service").read_text()
    socket_unit = (DEPLOY / "app.socket").read_text()
    settings = dict(line.split("=", 1) for line in service.splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify"
    assert settings["KillMode"] == "mixed"
    assert settings["ExecReload"] == "/bin/kill -s HUP $MAINPID"
    assert settings["ProtectSystem"] == "strict"
    assert settings["PrivateTmp"] == settings["NoNewPrivileges"] == "yes"
    assert settings["User"] != "root"
    assert "Requires=app.socket" in service and "ListenStream=" in socket_unit
    conf = _conf_values(ROOT / "conf" / "gunicorn.conf.py")
    assert int(settings["TimeoutStopSec"]) > conf["graceful_timeout"]


def _conf_values(path: Path) -> dict:
    from gunicorn.config import Config
    namespace = {"__file__": str(path), "__name__": "__config__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    known = Config().settings
    return {key: value for key, value in namespace.items() if key in known}
