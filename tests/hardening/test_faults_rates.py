"""Minimum data rates (240 bytes/s after a 5 s grace, the defaults): a request body that
trickles in and a client that stops reading its response are both ended, for every app
kind, while other clients are served as fast as ever."""

import socket
import threading
import time

import pytest

from hardening_support import percentile, timed_get
from helpers import Gunicorn, connect, wait_until

GRACE = 5.0  # ASYNCWORKER_RATE_GRACE's default
TRICKLERS = 50


def trickle(port: int, ended: list, stop: threading.Event) -> None:
    """A POST whose body comes a byte a second; records when and how the server ended it."""
    started = time.monotonic()
    with connect(port, timeout=1) as sock:
        sock.sendall(b"POST /sleep HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        sock.setblocking(False)
        while not stop.is_set():
            try:
                sock.send(b"x")
                data = sock.recv(4096)
            except BlockingIOError:  # nothing from the server yet
                stop.wait(1)
                continue
            except OSError:
                ended.append((time.monotonic() - started, b"reset"))
                return
            ended.append((time.monotonic() - started, data[:12]))  # a 408, or b"": closed
            return


def test_trickled_bodies_are_ended_while_others_are_served(figure):
    with Gunicorn("slow_apps:wsgi_app") as srv:
        ended, stop = [], threading.Event()
        clients = [threading.Thread(target=trickle, args=(srv.port, ended, stop)) for _ in range(TRICKLERS)]
        for client in clients:
            client.start()
        latencies = []
        deadline = time.monotonic() + 40
        while len(ended) < TRICKLERS and time.monotonic() < deadline:
            latencies.append(timed_get(srv.port, "/sleep?s=0"))
            time.sleep(0.2)
        stop.set()
        for client in clients:
            client.join(5)
    p99 = percentile([t for t in latencies if t is not None], 99)
    figure("50 request bodies at 1 byte/s", "all ended after (s)", round(max(t for t, _ in ended), 1), "",
           "< 40, not before the 5 s grace")
    figure("50 request bodies at 1 byte/s", "a normal client's p99 meanwhile", round(p99 * 1000, 1), "ms", "< 100")
    assert len(ended) == TRICKLERS
    assert all(GRACE <= t < 40 for t, _ in ended), ended
    assert all(data in (b"HTTP/1.1 408", b"reset", b"") for _, data in ended), ended
    assert None not in latencies and p99 < 0.1


@pytest.mark.parametrize("kind", ["wsgi", "asgi", "native"])
def test_a_client_that_stops_reading_is_closed_and_the_app_cleaned_up(kind, tmp_path):
    # (A WSGI app's 16 MiB would fit its response spool: the app would be done at once. Without
    # one its thread waits on the client; the spooled case is in test_faults_slow_readers.py.)
    spool = {"ASYNCWORKER_RESPONSE_SPOOL_MAX": "0"} if kind == "wsgi" else {}
    with Gunicorn(f"slow_apps:stream_{kind}", env={"MARKS": str(tmp_path), **spool}) as srv:
        with connect(srv.port, timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            started = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # and never read
            marker = tmp_path / f"{kind}-cleaned-up"
            wait_until(marker.exists, 30, interval=0.1, what="the app side cleaned up")
            elapsed = time.monotonic() - started
    assert GRACE <= elapsed < 20
