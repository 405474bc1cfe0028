"""Apps of the three kinds for the HTTP/2 tests: the same routes in each.

    /            "<kind> <protocol>" (SERVER_PROTOCOL, http_version, request.version)
    /echo        the body's length and sha256 ("<length> <hex>"), read as it comes
    /download    ?n= bytes of a known pattern, in 256 KiB pieces
    /sleep       ?s= seconds, then "slept"
    /slow-read   reads nothing for ?s= seconds, then the whole body: its length
    /headers     the request's Host and Cookie, as the app sees them
    /peer        (WSGI) the client and scheme the app is given: REMOTE_ADDR|wsgi.url_scheme
                 (ASGI) the scope's client, scheme and server: host:port|scheme|host:port
    /padded      (WSGI) a response field whose value has blanks at both ends
    /named       (native) a response field named by an istr, as aiohttp's constants are
    /until-disconnect  (ASGI) answers, then waits for http.disconnect and notes it
    /file        ?path= a file (WSGI: wsgi.file_wrapper, native: FileResponse)
"""

import asyncio
import hashlib
import os
import time
from urllib.parse import parse_qs

from multidict import istr

from server import web

PIECE = 256 * 1024
PATTERN = bytes(range(256)) * (PIECE // 256)


def pattern(n: int):
    """n bytes of PATTERN, in pieces."""
    while n > 0:
        piece = PATTERN[:min(n, PIECE)]
        n -= len(piece)
        yield piece


def _arg(query: str, name: str, default: str) -> str:
    return parse_qs(query).get(name, [default])[0]


def _mark_start():
    path = os.environ.get("H2_STARTS_FILE")
    if path:
        with open(path, "a") as f:
            f.write("x\n")


# -- WSGI ------------------------------------------------------------------------------


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ["QUERY_STRING"]
    _mark_start()
    if path == "/echo":
        digest, length = hashlib.sha256(), 0
        stream = environ["wsgi.input"]
        while True:
            block = stream.read(PIECE)
            if not block:
                break
            digest.update(block)
            length += len(block)
        body = f"{length} {digest.hexdigest()}".encode()
    elif path == "/download":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return pattern(int(_arg(query, "n", "0")))
    elif path == "/sleep":
        time.sleep(float(_arg(query, "s", "1")))
        body = b"slept"
    elif path == "/slow-read":  # reads nothing for ?s= seconds, then the whole body
        time.sleep(float(_arg(query, "s", "2")))
        body = str(len(environ["wsgi.input"].read())).encode()
    elif path == "/headers":
        body = f"{environ.get('HTTP_HOST')}|{environ.get('HTTP_COOKIE')}".encode()
    elif path == "/peer":
        body = f"{environ['REMOTE_ADDR']}|{environ['wsgi.url_scheme']}".encode()
    elif path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(_arg(query, "path", ""), "rb"))
    elif path == "/padded":  # a field value with blanks at both ends (HTTP/1.1 allows them)
        start_response("200 OK", [("X-Padded", " padded \t"), ("Content-Length", "2")])
        return [b"ok"]
    else:
        body = f"wsgi {environ['SERVER_PROTOCOL']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


# -- ASGI ------------------------------------------------------------------------------


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    path, query = scope["path"], scope["query_string"].decode()
    _mark_start()
    if path == "/download":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        for piece in pattern(int(_arg(query, "n", "0"))):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/echo":
        digest, length, more = hashlib.sha256(), 0, True
        while more:
            message = await receive()
            digest.update(message.get("body", b""))
            length += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = f"{length} {digest.hexdigest()}".encode()
    elif path == "/sleep":
        await asyncio.sleep(float(_arg(query, "s", "1")))
        body = b"slept"
    elif path == "/until-disconnect":  # waits for http.disconnect, then says so in H2_STARTS_FILE
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"waiting", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        with open(os.environ["H2_STARTS_FILE"], "a") as f:
            f.write("disconnected\n")
        return
    elif path == "/peer":
        (host, port), server = scope["client"], scope["server"]
        body = f"{host}:{port}|{scope['scheme']}|{server[0]}:{server[1]}".encode()
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True, "headers": []})
        await send({"type": "http.response.body", "body": b"with trailers"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
        return
    else:
        body = f"asgi {scope['http_version']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


# -- native ----------------------------------------------------------------------------


async def _root(request):
    _mark_start()
    return web.Response(text=f"native {request.version.major}.{request.version.minor}")


async def _echo(request):
    digest, length = hashlib.sha256(), 0
    while True:
        block = await request.content.read(PIECE)
        if not block:
            break
        digest.update(block)
        length += len(block)
    return web.Response(text=f"{length} {digest.hexdigest()}")


async def _download(request):
    response = web.StreamResponse()
    await response.prepare(request)
    for piece in pattern(int(request.query.get("n", "0"))):
        await response.write(piece)
    await response.write_eof()
    return response


async def _sleep(request):
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.Response(text="slept")


async def _slow_read(request):
    await asyncio.sleep(float(request.query.get("s", "2")))
    length = 0
    while block := await request.content.read(PIECE):
        length += len(block)
    return web.Response(text=str(length))


async def _file(request):
    return web.FileResponse(request.query["path"])


async def _named(request):
    """Response field names as aiohttp's constants are: multidict's istr, a str subclass."""
    return web.Response(text="ok", headers={istr("X-Named"): "yes", istr("Date"): "Thu, 01 Jan 2026 00:00:00 GMT"})


web_app = web.Application()
web_app.router.add_get("/file", _file)
web_app.router.add_get("/named", _named)
web_app.router.add_post("/slow-read", _slow_read)
web_app.router.add_get("/", _root)
web_app.router.add_post("/echo", _echo)
web_app.router.add_get("/download", _download)
web_app.router.add_get("/sleep", _sleep)
