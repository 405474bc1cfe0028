"""An ASGI request leaves nothing for the garbage collector: its exchange and its body's
sink held each other (the sink's error callback, a bound method of the exchange), so every
request that had a body, or whose app called receive(), waited for a collection with its
scope, head, task and body; with the worker's high first threshold, a collection then freed
thousands of them at once, a pause of tens of milliseconds under load."""

import pytest

from helpers import Gunicorn, connect, read_response

REQUESTS = 50


def request(sock, method: str, path: str, body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if method == "POST" else ""
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{length}\r\n".encode() + body)
    return read_response(sock).body


@pytest.mark.parametrize("method, body", [("POST", b"x" * 4096), ("GET", b"")],
                         ids=["body", "receive-without-body"])
def test_requests_leave_no_exchange_for_the_collector(method, body):
    env = {"ASYNCWORKER_APP_KIND": "asgi"}
    with Gunicorn("gc_apps:asgi_app", env=env) as server, connect(server.port) as sock:
        assert request(sock, "GET", "/gc-off") == b"off"
        for _ in range(REQUESTS):
            assert request(sock, method, "/read", body) == b"%d" % len(body)
        left = int(request(sock, "GET", "/gc-left?type=HttpExchange"))
    assert left <= 1, f"{left} exchanges wait for the garbage collector after {REQUESTS} requests"
