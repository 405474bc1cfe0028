"""ASYNCWORKER_MALLOC_RETAIN (server/workers/heap.py): freed heap up to the bound is kept
for reuse, past it given back, and 0 leaves glibc's behaviour. Each case runs in its own
interpreter (the setting is process-wide) and reads its resident memory.
ASYNCWORKER_GC_FREEZE: a real worker freezes what exists once its app is loaded, or not.
ASYNCWORKER_GC_THRESHOLD: the collector's first threshold, and what it does to requests
in flight at once."""

import gc
import json
import socket
import subprocess
import sys

import pytest

from helpers import APPS_DIR, Gunicorn, send_and_read
from server.workers.heap import _mallopt

MiB = 1024 * 1024

SCRIPT = r"""
import gc, json, os, sys
from server.workers.heap import retain_freed_heap
retain, held = int(sys.argv[1]), int(sys.argv[2])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
applied = retain_freed_heap(retain)
base = rss()
blocks = [b"\x01" * (256 * 1024) for _ in range(held // (256 * 1024))]  # socket-read sized
peak = rss()
del blocks
gc.collect()
print(json.dumps({"applied": applied, "grew": peak - base, "kept": rss() - base}))
"""


def freed_and_kept(retain: int, held: int) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(retain), str(held)],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


needs_glibc = pytest.mark.skipif(sys.platform != "linux" or _mallopt() is None, reason="glibc's mallopt on Linux")


@needs_glibc
def test_freed_bodies_under_the_bound_are_kept_for_reuse():
    result = freed_and_kept(32 * MiB, 16 * MiB)
    assert result["applied"] is True
    assert result["grew"] >= 15 * MiB
    assert result["kept"] >= 15 * MiB  # the next bodies reuse these pages, no fault


@needs_glibc
def test_freed_memory_past_the_bound_goes_back_to_the_system():
    result = freed_and_kept(32 * MiB, 96 * MiB)
    assert result["grew"] >= 95 * MiB
    assert result["kept"] <= 32 * MiB


@needs_glibc
def test_zero_leaves_glibc_to_give_everything_back():
    result = freed_and_kept(0, 16 * MiB)
    assert result["applied"] is False
    assert result["grew"] >= 15 * MiB
    assert result["kept"] <= 2 * MiB


@pytest.mark.parametrize("setting", [None, "0"], ids=["default", "off"])
def test_the_objects_of_start_up_are_frozen_once_the_app_is_loaded(setting):
    env = {} if setting is None else {"ASYNCWORKER_GC_FREEZE": setting}
    with Gunicorn("gc_apps:wsgi_app", env=env) as server:
        raw, _ = send_and_read(server.port, b"GET /gc-frozen HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    frozen = int(raw.rpartition(b"\r\n\r\n")[2])
    if setting is None:
        assert frozen > 10000, frozen  # (gunicorn, this worker and the app: tens of thousands)
    else:
        assert frozen == 0


def get(port: int, target: str) -> bytes:
    raw, _ = send_and_read(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target.encode())
    return raw.rpartition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(("app", "args", "setting", "expected"), [
    ("gc_apps:wsgi_app", (), None, 50000),
    ("gc_apps:wsgi_app", (), "0", gc.get_threshold()[0]),  # (this interpreter's own: 700)
    ("gc_apps:wsgi_app", (), "20000", 20000),
    ("gc_own_threshold:wsgi_app", (), None, 1234),  # the app's own thresholds are kept
    ("gc_apps:wsgi_app", ("-c", str(APPS_DIR / "gc_threshold_conf.py")), None, 1500),  # and the config file's
], ids=["default", "python", "set", "app-set-its-own", "config-set-its-own"])
def test_the_first_threshold_is_raised_once_the_app_is_loaded(app, args, setting, expected):
    env = {} if setting is None else {"ASYNCWORKER_GC_THRESHOLD": setting}
    with Gunicorn(app, *args, env=env) as server:
        assert int(get(server.port, "/gc-threshold")) == expected


IN_FLIGHT = 300  # requests held in the app at once: past 700 objects, far under 50,000


def collections_while_held(setting: str | None) -> int:
    """Collections that ran while IN_FLIGHT requests waited in an ASGI app together."""
    env = {"ASYNCWORKER_APP_KIND": "asgi", **({} if setting is None else {"ASYNCWORKER_GC_THRESHOLD": setting})}
    with Gunicorn("gc_apps:asgi_app", env=env) as server:
        request = b"GET /gc-hold?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % IN_FLIGHT
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(IN_FLIGHT)]
        try:
            before = int(get(server.port, "/gc-collect"))  # everything collected: the counts start at 0
            for sock in socks:  # (the last one lets them all go)
                sock.sendall(request)
            answers = [read_body(sock) for sock in socks]
        finally:
            for sock in socks:
                sock.close()
    return max(answers) - before


def read_body(sock) -> int:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return int(data.rpartition(b"\r\n\r\n")[2])


def test_requests_in_flight_together_start_no_collection_under_the_threshold():
    assert collections_while_held(None) == 0


@pytest.mark.parametrize(("setting", "at_least"), [("0", 5), ("2000", 1)], ids=["python", "2000"])
def test_past_the_threshold_the_same_requests_in_flight_start_collections(setting, at_least):
    """(300 requests and their connections: past 700 a dozen times, past 2,000 several.)"""
    assert collections_while_held(setting) >= at_least
