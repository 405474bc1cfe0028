"""WSGI app for the hardening fault tests (tests/hardening/test_faults_*.py).

Every request is recorded as worker_apps.py records them (``WORKER_APPS_DIR``).
Routes (PATH_INFO), on top of every route of worker_apps.py (``/hang``, ``/slow``,
``/big``, ``/stream``, ``/raise-before``, ``/raise-after``, ...):

* ``/count-input``         reads ``wsgi.input`` in 64 KiB pieces: 200 "<bytes> <crc32>"
* ``/sized?n=``            ``n`` bytes with a Content-Length, from a generator in 64 KiB pieces
* ``/exit``                ``os._exit(1)``: the worker dies mid-request
* ``/raise-in-start-response``  start_response with headers that are not a list
* ``/raise-after-start-response``  start_response, then an exception before any body
* ``/raise-in-first-piece``  an iterable whose first ``next()`` raises
* ``/raise-in-close``      a complete body whose ``close()`` raises
* ``/split?where=name|value|status&char=cr|lf|nul|crlf``  a header or status line carrying
  that character, to check it never reaches the wire
"""

import os
import zlib
import urllib.parse

from worker_apps import PIECE, ClosingIterable, _append
from worker_apps import app as worker_app

OWN_ROUTES = {"/count-input", "/sized", "/exit", "/raise-in-start-response", "/raise-after-start-response",
              "/raise-in-first-piece", "/raise-in-close", "/split"}
CHARS = {"cr": "\r", "lf": "\n", "nul": "\x00", "crlf": "\r\n"}


def _query(environ) -> dict:
    return {k: v[0] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}


def _count_input(environ, start_response):
    stream, total, crc = environ["wsgi.input"], 0, 0
    while piece := stream.read(PIECE):
        total += len(piece)
        crc = zlib.crc32(piece, crc)
    body = f"{total} {crc}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _sized(n: int):
    sent = 0
    while sent < n:
        size = min(PIECE, n - sent)
        yield b"s" * size
        sent += size


class _RaisingClose(ClosingIterable):
    def close(self):
        super().close()
        raise RuntimeError("boom in close()")


def _first_piece_raises():
    raise RuntimeError("boom in the first piece")
    yield b"never"  # noqa: unreachable: makes this a generator


def _split(environ, start_response):
    q = _query(environ)
    char = CHARS[q.get("char", "crlf")]
    where = q.get("where", "value")
    injected = f"{char}Set-Cookie: injected=1"
    if where == "status":
        start_response(f"200 OK{injected}", [("Content-Type", "text/plain")])
    elif where == "name":
        start_response("200 OK", [(f"X-Name{injected}", "v")])
    else:
        start_response("200 OK", [("X-Value", f"v{injected}")])
    return [b"should not be sent"]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path in OWN_ROUTES:
        _append("hits", path)  # worker_apps records the hits of its own routes
    if path == "/count-input":
        return _count_input(environ, start_response)
    if path == "/sized":
        n = int(_query(environ).get("n", "1048576"))
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
        return _sized(n)
    if path == "/exit":
        os._exit(1)  # not 3 or 4: gunicorn reads those as boot failures and stops
    if path == "/raise-in-start-response":
        start_response("200 OK", (("Content-Type", "text/plain"),))
        return [b"not reached"]
    if path == "/raise-after-start-response":
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise RuntimeError("boom after start_response")
    if path == "/raise-in-first-piece":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _first_piece_raises()
    if path == "/raise-in-close":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return _RaisingClose("raise-in-close", iter([b"done"]))
    if path == "/split":
        return _split(environ, start_response)
    return worker_app(environ, start_response)
