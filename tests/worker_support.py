"""Small helpers shared by test_timeouts.py and test_shutdown.py (on top of helpers.py)."""

import socket
import time
from pathlib import Path

from helpers import Gunicorn, connect, read_response, read_until_eof

APP = "worker_apps:app"


def worker_server(marks: Path, *args: str, threads: int = 4, env: dict | None = None) -> Gunicorn:
    """A gunicorn running tests/apps/worker_apps.py that records its marks in `marks`."""
    return Gunicorn(APP, *args, threads=threads, env={"WORKER_APPS_DIR": str(marks), **(env or {})})


def get(path: str, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


def post_head(path: str, length: int, *headers: str) -> bytes:
    return get(path, f"Content-Length: {length}", *headers).replace(b"GET ", b"POST ", 1)


def hits(marks: Path) -> list[str]:
    """Paths of the requests that reached the app, in order."""
    try:
        return (marks / "hits").read_text().split()
    except FileNotFoundError:
        return []


def started(marks: Path) -> int:
    """How many /slow or /hang requests the app has started."""
    return len(list(marks.glob("started-*")))


def fetch(port: int, path: str, timeout: float = 5):
    """One GET on a fresh connection; the parsed response, read through a buffered reader
    (large recv()s, as a real client: the next request can follow at once)."""
    with connect(port, timeout) as sock, sock.makefile("rb") as reader:
        sock.sendall(get(path))
        return read_response(reader)


def timed_eof(sock: socket.socket, timeout: float) -> tuple[bytes, bool, float]:
    """read_until_eof, plus the seconds it took."""
    t0 = time.monotonic()
    data, closed = read_until_eof(sock, timeout)
    return data, closed, time.monotonic() - t0


def nothing_within(sock: socket.socket, seconds: float) -> bool:
    """True if the peer sends nothing (and does not close) for `seconds`."""
    sock.settimeout(seconds)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    return False
