"""Requests waiting for an app thread are visible: a warning gives how many wait and the
longest wait, at most once every few seconds."""

import re
import threading
import time

from helpers import Gunicorn, connect, read_response, wait_until

from server.wsgi.pool import SATURATION_WARNING_INTERVAL

WARNING = re.compile(r"All 1 app threads are busy: (\d+) requests wait for one, the longest for ([\d.]+) s")


def get_slowly(port: int, statuses: list) -> None:
    with connect(port, timeout=30) as sock:
        sock.sendall(b"GET /sleep?s=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        statuses.append(read_response(sock).status)


def test_a_saturated_pool_is_warned_about_with_its_queue(tmp_path):
    with Gunicorn("slow_apps:wsgi_app", threads=1) as srv:
        statuses = []
        clients = [threading.Thread(target=get_slowly, args=(srv.port, statuses)) for _ in range(5)]
        started = time.monotonic()
        for client in clients:
            client.start()
        first = wait_until(lambda: WARNING.search(srv.log_text()), 5, what="the saturation warning")
        for client in clients:
            client.join(30)
        elapsed = time.monotonic() - started
        warnings = WARNING.findall(srv.log_text())
    assert statuses == [200] * 5
    depth, longest = int(first.group(1)), float(first.group(2))
    assert 1 <= depth <= 4 and longest > 0.5  # one request runs, the others wait
    assert len(warnings) <= 1 + elapsed // SATURATION_WARNING_INTERVAL  # at most one per interval
