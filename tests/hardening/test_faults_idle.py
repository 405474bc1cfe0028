"""Thousands of idle keep-alive connections: a fresh client is still served, the idle
connections stay open, and each costs the worker little memory (RSS per idle connection,
target under 16 KiB). 500 connections by default, 2000 with ``HARDENING_LONG=1``."""

import gc
import time

from hardening_support import hardening_server, open_idle, request, rss, scaled, still_open, the_worker, timed_get
from helpers import read_response

IDLE = scaled(500, 2000)
PER_CONNECTION_BOUND = 16 * 1024


def close_all(socks) -> None:
    for sock in socks:
        sock.close()


def test_idle_keepalive_connections_cost_little_and_block_nobody(tmp_path, figure):
    scenario = f"{IDLE} idle keep-alive connections"
    with hardening_server(tmp_path, "--keep-alive", "300", "--worker-connections", str(IDLE + 100)) as server:
        worker = the_worker(server)
        # Warm up: the first connections pay for code paths, caches and allocator arenas once.
        close_all(open_idle(server.port, 50))
        time.sleep(0.5)
        before = rss(worker)
        socks = open_idle(server.port, IDLE)
        try:
            time.sleep(0.5)
            after = rss(worker)
            per_connection = (after - before) / IDLE
            fresh = timed_get(server.port, "/fresh", timeout=10)
            open_count = sum(map(still_open, socks))
            figure(scenario, "worker RSS per idle connection", per_connection / 1024, "KiB",
                   f"< {PER_CONNECTION_BOUND // 1024} KiB")
            figure(scenario, "worker RSS growth", (after - before) / 1024 / 1024, "MiB")
            figure(scenario, "fresh client answered in", (fresh or float("inf")) * 1000, "ms", "answered")
            figure(scenario, "idle connections still open", open_count, f"of {IDLE}", "all")
            assert fresh is not None, "a fresh client was not served"
            assert open_count == IDLE
            # They are still usable: a request on the oldest one is answered.
            socks[0].sendall(request("GET", "/again"))
            assert read_response(socks[0]).body == b"/again"
        finally:
            close_all(socks)
            gc.collect()
    assert per_connection < PER_CONNECTION_BOUND, f"{per_connection:.0f} bytes per idle connection"
