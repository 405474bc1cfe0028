"""Shared pieces of the hardening fault tests: sizes (CI or long mode), the worker's
memory, a server running tests/apps/hardening_apps.py, and load helpers.

``HARDENING_LONG=1`` switches every scenario to the sizes of the issue (1 GiB bodies,
2000 idle connections, a 1 MiB/s reader); the defaults are scaled down so the suite fits
CI, while every bound is still crossed (each body is far larger than its memory bound).
"""

import os
import socket
import threading
import time
from pathlib import Path

from helpers import WORKER, Gunicorn, connect, read_response

LONG = os.environ.get("HARDENING_LONG") == "1"
MiB = 1024 * 1024
APP = "hardening_apps:app"


def scaled(default, long):
    return long if LONG else default


def worker_label() -> str:
    return "asyncworker" if WORKER == "server.workers.AsyncWorker" else WORKER


def is_asyncworker() -> bool:
    return WORKER == "server.workers.AsyncWorker"


def hardening_server(marks: Path, *args: str, threads: int = 4, env: dict | None = None) -> Gunicorn:
    return Gunicorn(APP, *args, threads=threads, env={"WORKER_APPS_DIR": str(marks), **(env or {})})


def the_worker(server: Gunicorn) -> int:
    pids = server.worker_pids()
    assert len(pids) == 1, pids
    return pids[0]


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds_under(pid: int, directory: Path) -> list[str]:
    """The worker's open files inside ``directory`` (deleted temporary files included)."""
    found = []
    prefix = str(directory)
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(prefix):
            found.append(target)
    return found


class RssSampler:
    """Samples a process' RSS every ``interval`` s in a thread; ``peak`` is the maximum seen."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid = pid
        self.interval = interval
        self.baseline = rss(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def _sample(self) -> None:
        try:
            self.peak = max(self.peak, rss(self.pid))
        except (OSError, RuntimeError):  # the process is gone
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    if body:
        extra += f"Content-Length: {len(body)}\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode() + body


def open_idle(port: int, n: int) -> list:
    """``n`` connections, each having made one request (answered 200) and now idle between
    requests."""
    socks = []
    for i in range(n):
        sock = connect(port, timeout=10)
        socks.append(sock)
        sock.sendall(request("GET", f"/idle{i}"))
        resp = read_response(sock)
        assert resp.status == 200, resp
    return socks


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def still_open(sock: socket.socket) -> bool:
    """True if the peer has neither closed nor sent anything (non-blocking peek)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False  # EOF, or bytes nobody asked for


def timed_get(port: int, path: str, timeout: float = 5) -> float | None:
    """Seconds for one GET on a fresh connection to be answered 200 (None: failed)."""
    from helpers import read_response

    t0 = time.monotonic()
    try:
        with connect(port, timeout) as sock:
            sock.sendall(request("GET", path))
            resp = read_response(sock)
    except OSError:
        return None
    return time.monotonic() - t0 if resp is not None and resp.status == 200 else None


class Hang(AssertionError):
    pass


class no_hang:
    """Fail (raise ``Hang``) if the block runs longer than ``seconds``: hypothesis' deadline
    only judges an example after it returns, so a parser stuck in a loop needs an alarm.
    Main thread only (SIGALRM)."""

    def __init__(self, seconds: float = 10):
        self.seconds = seconds

    def __enter__(self):
        import signal

        def alarm(signum, frame):
            raise Hang(f"still running after {self.seconds} s")

        self._previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        import signal

        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous)
