"""Apps for the worker tests (timeouts, shutdown, limits, errors, streaming).

Routes (PATH_INFO):

* ``/slow?s=1``    records a start marker, sleeps ``s`` seconds, then 200 "slept <s>"
* ``/hang``        records a start marker, sleeps 300 s
* ``/echo``        200 with the request body (read with ``wsgi.input.read()``)
* ``/sha``         reads ``wsgi.input`` in 64 KiB pieces; 200 "<bytes> <sha256>"
* ``/count``       200 "<worker pid>"
* ``/big?n=``      a generator body of ``n`` bytes in 64 KiB pieces (records ``close()``)
* ``/raise-before`` raises before start_response
* ``/raise-after`` yields a first chunk, then raises
* ``/stream``      a never-ending iterable whose ``close()`` is recorded
* anything else    200 with the path as body (to check the order of pipelined responses)

Markers go to the directory named by ``WORKER_APPS_DIR`` (when set): every request
that reaches the app appends ``<path>`` to ``hits``; ``/slow`` and ``/hang`` create
``started-<n>`` files; an iterable's ``close()`` appends to ``closed`` (the file
``WORKER_APPS_CLOSED_FILE`` names, default ``<dir>/closed``).
"""

import hashlib
import itertools
import os
import time
import urllib.parse

PIECE = 64 * 1024
_started = itertools.count()


def _dir():
    return os.environ.get("WORKER_APPS_DIR")


def _append(name, line):
    directory = _dir()
    if directory:
        with open(os.path.join(directory, name), "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _mark_started(path):
    directory = _dir()
    if directory:
        name = os.path.join(directory, f"started-{os.getpid()}-{next(_started)}")
        with open(name, "w", encoding="utf-8") as f:
            f.write(path)


def _record_closed(what):
    path = os.environ.get("WORKER_APPS_CLOSED_FILE")
    if not path and _dir():
        path = os.path.join(_dir(), "closed")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(what + "\n")


class ClosingIterable:
    """A body of ``pieces`` (an iterator) that records when the server calls close()."""

    def __init__(self, name, pieces):
        self.name = name
        self._pieces = pieces

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._pieces)

    def close(self):
        _record_closed(self.name)


def _ok(start_response, body, content_type="text/plain"):
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _big_pieces(n):
    sent = 0
    while sent < n:
        size = min(PIECE, n - sent)
        yield b"x" * size
        sent += size


def _endless():
    for i in itertools.count():
        yield b"piece %d\n" % i
        time.sleep(0.01)


def _raise_after():
    yield b"first chunk\n"
    raise RuntimeError("boom after the first chunk")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    _append("hits", path)

    if path == "/slow":
        seconds = float(query.get("s", ["1"])[0])
        _mark_started(path)
        time.sleep(seconds)
        return _ok(start_response, b"slept %s" % str(seconds).encode())
    if path == "/hang":
        _mark_started(path)
        time.sleep(300)
        return _ok(start_response, b"woke up")
    if path == "/echo":
        return _ok(start_response, environ["wsgi.input"].read(), "application/octet-stream")
    if path == "/sha":
        digest, total = hashlib.sha256(), 0
        stream = environ["wsgi.input"]
        while piece := stream.read(PIECE):
            if len(piece) > PIECE:
                raise AssertionError(f"read({PIECE}) returned {len(piece)} bytes")
            digest.update(piece)
            total += len(piece)
        return _ok(start_response, f"{total} {digest.hexdigest()}".encode())
    if path == "/count":
        return _ok(start_response, str(os.getpid()).encode())
    if path == "/big":
        n = int(query.get("n", [str(10 * 1024 * 1024)])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return ClosingIterable("big", _big_pieces(n))
    if path == "/raise-before":
        raise RuntimeError("boom before start_response")
    if path == "/raise-after":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _raise_after()
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIterable("stream", _endless())
    return _ok(start_response, path.encode())
