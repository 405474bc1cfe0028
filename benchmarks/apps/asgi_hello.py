"""The raw ASGI app of the benchmark suite: the same routes as ``hello.py``.

- ``/`` (any other path): ``Hello, world!\\n`` as plain text with its Content-Length;
- ``/chunked``: 16 pieces of 4 KiB, no Content-Length (chunked for HTTP/1.1);
- ``/100k``: 100 KiB of fixed bytes with their Content-Length;
- ``/file``: the file named by ``$BENCH_FILE``, with its Content-Length: by
  ``http.response.pathsend`` when the server offers it in ``scope["extensions"]``, else in
  body messages of 64 KiB; the header ``x-bench-path`` says which (``pathsend`` or ``body``);
- ``/echo``: reads the whole request body and answers its length in decimal;
- ``/form``: parses the urlencoded body (``parse_qsl``), answers ``<fields> <characters of the values>``.

    gunicorn -k server.workers.AsyncWorker benchmarks.apps.asgi_hello:app
"""

import os
from urllib.parse import parse_qsl

BODY = b"Hello, world!\n"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(BODY))]
CHUNK = b"x" * 4096
CHUNKS = 16
BODY_100K = b"0123456789abcdef" * (100 * 1024 // 16)
HEADERS_100K = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % len(BODY_100K))]
BLOCK = 65536


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path = scope["path"]
    if path == "/chunked":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for _ in range(CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/echo":
        await _echo(receive, send)
        return
    if path == "/100k":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS_100K})
        await send({"type": "http.response.body", "body": BODY_100K})
        return
    if path == "/file":
        await _file(scope, send)
        return
    if path == "/form":
        await _form(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def _echo(receive, send):
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await _text(send, b"%d" % size)


async def _form(receive, send):
    pieces = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        pieces.append(message.get("body", b""))
        more = message.get("more_body", False)
    pairs = parse_qsl(b"".join(pieces).decode("latin-1"), encoding="utf-8")
    await _text(send, b"%d %d" % (len(pairs), sum(len(v) for _, v in pairs)))


async def _text(send, body: bytes):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def _file(scope, send):
    path = os.environ.get("BENCH_FILE")
    if not path:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    pathsend = "http.response.pathsend" in (scope.get("extensions") or {})
    size = os.stat(path).st_size
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % size),
                            (b"x-bench-path", b"pathsend" if pathsend else b"body")]})
    if pathsend:
        await send({"type": "http.response.pathsend", "path": path})
        return
    with open(path, "rb") as f:  # blocking reads of a file in the page cache, as simple apps do
        while True:
            block = f.read(BLOCK)
            last = len(block) < BLOCK
            await send({"type": "http.response.body", "body": block, "more_body": not last})
            if last:
                return


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
