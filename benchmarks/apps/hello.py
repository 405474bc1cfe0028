"""The WSGI app of the benchmark suite: one app, the routes of benchmarks/cases.py.

- ``/`` (any other path): ``Hello, world!\\n`` with its Content-Length;
- ``/chunked``: 16 pieces of 4 KiB from a generator, no Content-Length (the
  server frames it: chunked for HTTP/1.1);
- ``/100k``: 100 KiB of fixed bytes with their Content-Length;
- ``/file``: the file named by ``$BENCH_FILE`` through ``wsgi.file_wrapper`` (blocks of
  64 KiB from the app when the server has none), with its Content-Length; the header
  ``X-Bench-Path`` says which (``file_wrapper`` or ``blocks``);
- ``/echo``: reads the whole request body and answers its length in decimal;
- ``/form``: parses the urlencoded body (``parse_qsl``), answers ``<fields> <characters of the values>``.
"""

import os
from urllib.parse import parse_qsl

BODY = b"Hello, world!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
CHUNK = b"x" * 4096
CHUNKS = 16
BODY_100K = b"0123456789abcdef" * (100 * 1024 // 16)
HEADERS_100K = [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BODY_100K)))]
BLOCK = 65536


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/chunked":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks()
    if path == "/echo":
        return _echo(environ, start_response)
    if path == "/100k":
        start_response("200 OK", list(HEADERS_100K))
        return [BODY_100K]
    if path == "/file":
        return _file(environ, start_response)
    if path == "/form":
        return _form(environ, start_response)
    start_response("200 OK", list(HEADERS))
    return [BODY]


def _chunks():
    for _ in range(CHUNKS):
        yield CHUNK


def _read_body(environ) -> bytes:
    stream = environ["wsgi.input"]
    left = int(environ.get("CONTENT_LENGTH") or 0)
    blocks = []
    while left > 0:
        block = stream.read(min(left, BLOCK))
        if not block:
            break
        blocks.append(block)
        left -= len(block)
    return b"".join(blocks)


def _echo(environ, start_response):
    stream = environ["wsgi.input"]
    left = int(environ.get("CONTENT_LENGTH") or 0)
    size = 0
    while left > 0:
        block = stream.read(min(left, BLOCK))
        if not block:
            break
        size += len(block)
        left -= len(block)
    return _text(start_response, str(size).encode())


def _form(environ, start_response):
    pairs = parse_qsl(_read_body(environ).decode("latin-1"), encoding="utf-8")
    return _text(start_response, b"%d %d" % (len(pairs), sum(len(v) for _, v in pairs)))


def _text(start_response, body: bytes):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _file(environ, start_response):
    path = os.environ.get("BENCH_FILE")
    if not path:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return []
    f = open(path, "rb")
    size = os.fstat(f.fileno()).st_size
    wrapper = environ.get("wsgi.file_wrapper")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size)),
                              ("X-Bench-Path", "file_wrapper" if wrapper else "blocks")])
    if wrapper:
        return wrapper(f, BLOCK)
    return _blocks(f)


def _blocks(f):
    with f:
        while True:
            block = f.read(BLOCK)
            if not block:
                return
            yield block
