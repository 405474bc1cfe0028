"""One small app of each kind for the per-request record (access log, hooks) tests.

Each answers ``/hello`` with ``hello world`` (11 bytes) and ``/big`` with 100 kB, fails
on ``/fail`` before responding (a 500 from the server), and (ASGI, native) accepts a
WebSocket on ``/ws`` and closes it at once.
"""

from server import web

HELLO = b"hello world"
BIG = b"x" * 100_000  # /big: a response worth buffering


def wsgi_app(environ, start_response):
    if environ["PATH_INFO"] == "/fail":
        raise RuntimeError("failing on purpose")
    body = BIG if environ["PATH_INFO"] == "/big" else HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/fail":
        raise RuntimeError("failing on purpose")
    body = BIG if scope["path"] == "/big" else HELLO
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def hello(request):
    return web.Response(body=HELLO, content_type="text/plain")


async def big(request):
    return web.Response(body=BIG, content_type="text/plain")


async def fail(request):
    raise RuntimeError("failing on purpose")


async def websocket(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close()
    return ws


native_app = web.Application()
native_app.router.add_get("/hello", hello)
native_app.router.add_get("/fail", fail)
native_app.router.add_get("/big", big)
native_app.router.add_get("/ws", websocket)
