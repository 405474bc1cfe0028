"""What an idle keep-alive connection keeps of the worker's Python heap, counted by
``tracemalloc`` inside a real worker (tests/apps/heap_apps.py), for every app kind: a
connection that made one request and waits for the next holds its protocol objects, its
transport and its keep-alive timer, and nothing of the request it served (its head, its
forwarded client), nor what only a phase it is not in needs (the minimum rates of a body
or of a slow reader, the set of reasons reading is paused).

The RSS per idle connection (test_faults_idle.py) also counts the allocator's pools and
moves with them; this count moves by a few bytes from run to run, so its bounds are tight:
a few hundred bytes more per connection cross them.
"""

import pytest

from hardening_support import is_asyncworker, open_idle, request
from helpers import Gunicorn, connect, read_response

pytestmark = pytest.mark.skipif(not is_asyncworker(), reason="the counts are this worker's")

IDLE = 300
# Bytes of Python heap per idle keep-alive connection (measured: 3.3-3.4 KiB on the loop's
# kinds, 5.0 KiB for WSGI, whose connection also keeps a thread condition and its peer's
# environ entries); before the changes that set them, 6.4-6.6 and 8.1 KiB.
BOUNDS = {"asgi": 4096, "native": 4096, "wsgi": 5632}
APPS = {"asgi": "heap_apps:asgi_app", "native": "heap_apps:web_app", "wsgi": "heap_apps:wsgi_app"}


def get(port: int, path: str) -> bytes:
    with connect(port, timeout=10) as sock:
        sock.sendall(request("GET", path))
        response = read_response(sock)
    assert response.status == 200, response
    return response.body


@pytest.mark.parametrize("kind", sorted(APPS))
def test_an_idle_keepalive_connection_holds_a_bounded_heap(kind, figure):
    with Gunicorn(APPS[kind], "--keep-alive", "300", "--worker-connections", str(IDLE + 100)) as server:
        for sock in open_idle(server.port, 50):  # (the first connections fill caches once)
            sock.close()
        get(server.port, "/heap/start")
        socks = open_idle(server.port, IDLE)
        try:
            held = int(get(server.port, "/heap/now"))
            per_connection = held / IDLE
            figure(f"{IDLE} idle keep-alive connections, {kind}", "Python heap per idle connection",
                   per_connection, "bytes", f"< {BOUNDS[kind]}")
            socks[0].sendall(request("GET", "/again"))  # (they are still usable)
            assert read_response(socks[0]).body == b"ok"
        finally:
            for sock in socks:
                sock.close()
    assert per_connection < BOUNDS[kind], f"{per_connection:.0f} bytes of heap per idle connection"
