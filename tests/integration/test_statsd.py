"""gunicorn's statsd request metrics: the same datagrams as gunicorn's gthread worker sends,
for every app kind, with or without an access log."""

import re
import socket
from collections import Counter

import pytest

from helpers import Gunicorn, connect, read_response, wait_until

APPS = {"gthread": "record_apps:wsgi_app", "wsgi": "record_apps:wsgi_app", "asgi": "record_apps:asgi_app",
        "native": "record_apps:native_app"}
REQUESTS = ["/hello", "/hello", "/fail"]  # two 200s and a 500
REQUEST_METRIC = re.compile(r"gunicorn\.request")


@pytest.fixture
def statsd():
    """A real UDP socket where the statsd datagrams land."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        yield sock


def received(sock) -> list[str]:
    datagrams = []
    while True:
        try:
            datagrams.extend(sock.recv(65536).decode().splitlines())
        except TimeoutError:
            return datagrams


def request_metrics(sock, server, tmp_path, *extra) -> Counter:
    """What ``server`` sends of request metrics for REQUESTS: metric name and type -> count."""
    port = sock.getsockname()[1]
    args = ["--statsd-host", f"127.0.0.1:{port}", "--statsd-prefix", "edge", *extra]
    if server == "gthread":
        args += ["-k", "gthread"]
    lines = []

    def all_arrived() -> bool:
        lines.extend(line for line in received(sock) if REQUEST_METRIC.search(line))
        return len(lines) >= 3 * len(REQUESTS)

    with Gunicorn(APPS[server], *args) as srv:
        received(sock)  # the boot's metrics (gunicorn.workers) are not the point
        for path in REQUESTS:
            with connect(srv.port) as conn:
                conn.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
                read_response(conn)
        wait_until(all_arrived, 5, what="the request metrics")
        all_arrived()  # and no more than that: one more look (received() waits 0.1 s)
    return Counter(_name_and_type(line) for line in lines)


def _name_and_type(line: str) -> str:
    name, rest = line.split(":", 1)
    return f"{name}|{rest.split('|')[1]}"


@pytest.mark.parametrize("access_log", [False, True], ids=["no-access-log", "access-log"])
@pytest.mark.parametrize("kind", ["wsgi", "asgi", "native"])
def test_request_metrics_are_gthreads(statsd, kind, access_log, tmp_path):
    extra = ["--access-logfile", str(tmp_path / "access.log")] if access_log else []
    ours = request_metrics(statsd, kind, tmp_path, *extra)
    theirs = request_metrics(statsd, "gthread", tmp_path, *extra)
    assert ours == theirs == Counter({"edge.gunicorn.requests|c": 3, "edge.gunicorn.request.duration|ms": 3,
                                      "edge.gunicorn.request.status.200|c": 2,
                                      "edge.gunicorn.request.status.500|c": 1})
