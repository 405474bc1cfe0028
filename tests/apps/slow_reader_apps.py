"""WSGI app for the slow-reader tests (tests/hardening/test_faults_slow_readers.py).

Routes (PATH_INFO):

* ``/ping``                     200 "pong"
* ``/stream?n=&name=&chunked=``  ``n`` bytes of the pattern (``pattern``) from a generator in
  64 KiB pieces, with a Content-Length unless ``chunked=1``; the bytes produced so far go to
  ``<dir>/produced-<name>`` as each piece is handed over, and ``close()`` of the iterable
  creates ``<dir>/closed-<name>``; with ``fail_at=`` it raises once it has produced that many bytes
* ``/file?path=&truncate=``      the file at ``path`` through ``wsgi.file_wrapper``; ``close()``
  of the wrapper creates ``<dir>/closed-file`` (and first truncates the file to ``truncate``
  bytes, when given: a file shorter than its response announced)
* ``/spooled``                  200 "<bytes>": what the worker's response spools hold
  (``server.protocol.spool.spooled_bytes``)

``<dir>`` is ``WORKER_APPS_DIR``.
"""

import hashlib
import os
import urllib.parse

PIECE = 64 * 1024
_BLOCK = hashlib.shake_256(b"slow readers").digest(PIECE)


def piece(k: int) -> bytes:
    """The ``k``-th 64 KiB piece of the pattern: its number, then fixed noise (a piece out
    of place or repeated changes the body's hash)."""
    return k.to_bytes(8, "big") + _BLOCK[8:]


def pattern(n: int):
    """The first ``n`` bytes of the pattern, piece by piece."""
    k = 0
    while n > 0:
        yield piece(k)[:n]
        n -= PIECE
        k += 1


def pattern_sha256(n: int) -> str:
    digest = hashlib.sha256()
    for data in pattern(n):
        digest.update(data)
    return digest.hexdigest()


def _mark(name: str, text: str = "") -> None:
    directory = os.environ.get("WORKER_APPS_DIR")
    if directory:
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)


class _Stream:
    """The pattern, recording its progress and its close()."""

    def __init__(self, n: int, name: str, fail_at: int | None = None):
        self._pieces = pattern(n)
        self._name = name
        self._produced = 0
        self._fail_at = fail_at

    def __iter__(self):
        return self

    def __next__(self):
        if self._fail_at is not None and self._produced >= self._fail_at:
            raise RuntimeError(f"boom after {self._produced} bytes")
        data = next(self._pieces)
        _mark(f"produced-{self._name}", str(self._produced))  # (what the server took so far)
        self._produced += len(data)
        return data

    def close(self):
        _mark(f"closed-{self._name}")


class _RecordingFile:
    """A file whose close() is recorded."""

    def __init__(self, path: str, truncate: int | None = None):
        self._file = open(path, "rb")
        self.mode = "rb"
        self._path, self._truncate = path, truncate

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        if self._truncate is not None:
            os.truncate(self._path, self._truncate)
        self._file.close()
        _mark("closed-file")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = {k: v[0] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/stream":
        n = int(query.get("n", str(16 * 1024 * 1024)))
        headers = [("Content-Type", "application/octet-stream")]
        if query.get("chunked") != "1":
            headers.append(("Content-Length", str(n)))
        start_response("200 OK", headers)
        fail_at = int(query["fail_at"]) if "fail_at" in query else None
        return _Stream(n, query.get("name", "stream"), fail_at)
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        truncate = int(query["truncate"]) if "truncate" in query else None
        return environ["wsgi.file_wrapper"](_RecordingFile(query["path"], truncate), 64 * 1024)
    if path == "/spooled":
        from server.protocol.spool import spooled_bytes

        body = str(spooled_bytes()).encode()
    else:
        body = b"pong"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
