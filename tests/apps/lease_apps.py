"""WSGI apps for the responses an app thread writes itself (server/protocol/lease.py)."""

import os
import threading
import time
from urllib.parse import parse_qs

from server.wsgi.pool import _POOLS

PATTERN = bytes(range(256))


def _params(environ) -> dict:
    return {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", b"world"]


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return iter([b"one ", b"two"])


def big(environ, start_response):
    """A whole body larger than a socket takes at once: the loop writes the rest."""
    size = int(_params(environ)["size"])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [PATTERN * (size // len(PATTERN))]


def loop_blocked(environ, start_response):
    """Answer while the worker's loop is blocked, until the client writes to the fifo."""
    fifo = _params(environ)["fifo"]
    inside = threading.Event()

    def block():
        inside.set()
        with open(fifo, "rb") as f:  # (blocks until the client opens it to write)
            f.read(1)

    loop = next(pool._loop for pool in list(_POOLS) if not pool.stopped)
    loop.call_soon_threadsafe(block)
    if not inside.wait(10):
        raise RuntimeError("the loop did not run the blocking call")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"written while the loop is blocked"]


def hold(environ, start_response):
    """Mark ``entered-<name>`` in ``dir``, then answer once ``dir/release`` exists (at most 10 s)."""
    params = _params(environ)
    folder = params["dir"]
    open(os.path.join(folder, "entered-" + params["name"]), "w").close()
    deadline = time.monotonic() + 10
    while not os.path.exists(os.path.join(folder, "release")) and time.monotonic() < deadline:
        time.sleep(0.005)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [params["name"].encode()]


ROUTES = {f.__name__.replace("_", "-"): f for f in (hello, stream, big, loop_blocked, hold)}


def app(environ, start_response):
    return ROUTES[environ["PATH_INFO"].strip("/")](environ, start_response)
