"""Apps that answer ``/sleep?s=N`` after N seconds (requests kept in flight): ASGI, WSGI and native.
With ``$MARKS`` set, the ASGI app adds a line to ``$MARKS/started`` as each request begins."""

import asyncio
import os
import time
from urllib.parse import parse_qs

from server import web


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    seconds = float(parse_qs(scope["query_string"].decode()).get("s", ["0"])[0])
    if "MARKS" in os.environ:
        with open(os.path.join(os.environ["MARKS"], "started"), "a") as marks:
            marks.write("started\n")
    await asyncio.sleep(seconds)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ, start_response):
    """``/sleep?s=N`` after N seconds, on the app thread; ``/wait?for=NAME`` once the file
    ``$MARKS/NAME`` exists (10 s at most), having made ``$MARKS/NAME-<n>`` when it began."""
    query = parse_qs(environ["QUERY_STRING"])
    if environ["PATH_INFO"] == "/wait":
        _wait_for_file(os.path.join(os.environ["MARKS"], query["for"][0]))
    else:
        time.sleep(float(query.get("s", ["0"])[0]))
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _wait_for_file(path: str) -> None:
    with open(f"{path}-{len(os.listdir(os.path.dirname(path)))}", "w"):
        pass
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


async def _sleep_native(request):
    await asyncio.sleep(float(request.query.get("s", 0)))
    return web.Response(body=b"ok")


native_app = web.Application()
native_app.router.add_get("/sleep", _sleep_native)


# -- 16 MiB streamed in 64 KiB pieces; when the server gives up on the client, a marker file
# named after the kind appears in $MARKS (the app side was cleaned up) -------------------------
PIECE = b"s" * 65536
PIECES = 256


def _mark(kind: str) -> None:
    with open(os.path.join(os.environ["MARKS"], f"{kind}-cleaned-up"), "w"):
        pass


def stream_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return _pieces()


def _pieces():
    try:
        for _ in range(PIECES):
            yield PIECE
    finally:
        _mark("wsgi")  # close() of the iterable


async def stream_asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        for _ in range(PIECES):
            await send({"type": "http.response.body", "body": PIECE, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except OSError:
        _mark("asgi")
        raise


async def _stream_native(request):
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        for _ in range(PIECES):
            await response.write(PIECE)
    except OSError:
        _mark("native")
        raise
    return response


stream_native = web.Application()
stream_native.router.add_get("/", _stream_native)
