"""A WSGI request leaves nothing for the garbage collector: its exchange and the handover of
its body held each other (a bound method), so every request's environ, head and buffers
waited for a collection, which then ran every few hundred requests."""

import pytest

from helpers import Gunicorn, connect, read_response

REQUESTS = 50
THREADS = 2  # a pool thread may hold its last exchange until it takes the next one


def get(sock, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return read_response(sock).body


@pytest.mark.parametrize("path", ["/", "/stream"], ids=["whole", "generator"])
def test_requests_leave_no_exchange_for_the_collector(path):
    with Gunicorn("gc_apps:wsgi_app", threads=THREADS) as server, connect(server.port) as sock:
        assert get(sock, "/gc-off") == b"off"
        for _ in range(REQUESTS):
            assert get(sock, path) in (b"Hello, world!\n", b"abc")
        left = int(get(sock, "/gc-left?type=WSGIExchange"))
    assert left <= THREADS + 1, f"{left} exchanges wait for the garbage collector after {REQUESTS} requests"
