"""A client that pipelines requests and never reads the answers costs a bounded amount of
memory, for every app kind: the next request waits while the transport is paused for
writing, so at most one response waits in our buffer."""

import time

import pytest

from hardening_support import MiB, RssSampler, the_worker
from helpers import Gunicorn, connect

APPS = {"wsgi": "record_apps:wsgi_app", "asgi": "record_apps:asgi_app", "native": "record_apps:native_app"}
REQUESTS = 2000  # of a 100 kB response each: 200 MB, were they all answered into our buffer
BOUND = 48 * MiB


@pytest.mark.parametrize("kind", APPS)
def test_a_pipelined_flood_from_a_client_that_never_reads_is_bounded(kind, figure):
    flood = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n" * REQUESTS
    with Gunicorn(APPS[kind]) as server:
        worker = the_worker(server)
        with RssSampler(worker) as sampler, connect(server.port, timeout=10) as sock:
            sock.setblocking(False)
            sent = 0
            deadline = time.monotonic() + 5
            while sent < len(flood) and time.monotonic() < deadline:  # as much as the server takes
                try:
                    sent += sock.send(flood[sent:])
                except BlockingIOError:
                    time.sleep(0.05)
            time.sleep(2)  # what the worker would do with it, it has done by now
    figure(f"pipelined flood, never read ({kind})", "worker RSS growth", sampler.growth // MiB, "MiB",
           f"< {BOUND // MiB}")
    assert sampler.growth < BOUND
