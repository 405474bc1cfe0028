"""Apps for the memory tests of WebSocket floods and tiny body chunks
(tests/hardening/test_faults_ws_memory.py, test_faults_tiny_chunks.py), one per app kind:
``asgi_app``, ``web_app`` (native) and ``wsgi_app``.

* ``/body?delay=S``: waits S seconds without reading the request body, then reads it
  whole and answers ``<length> <crc32>``.
* ``/ws/echo`` (ASGI, native): echoes text messages.
* ``/ws/lazy?delay=S&count=N`` (ASGI, native): reads nothing for S seconds, then N
  binary messages, and sends ``<count> <total bytes>`` as text.
"""

import asyncio
import time
import zlib

from server import web

MiB = 1024 * 1024
WS_MAX_MESSAGE = 17 * MiB  # native: room for the 16 MB messages of the tests


def _query(query_string: str) -> dict:
    pairs = (item.partition("=") for item in query_string.split("&") if item)
    return {name: value for name, _, value in pairs}


# -- ASGI ---------------------------------------------------------------------------

async def asgi_app(scope, receive, send):
    if scope["type"] == "websocket":
        await _asgi_websocket(scope, receive, send)
    elif scope["type"] == "http":
        await _asgi_body(scope, receive, send)


async def _asgi_body(scope, receive, send):
    await asyncio.sleep(float(_query(scope["query_string"].decode()).get("delay", 0)))
    size, crc, more = 0, 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        body = message.get("body", b"")
        size, crc, more = size + len(body), zlib.crc32(body, crc), message.get("more_body", False)
    answer = f"{size} {crc}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


async def _asgi_websocket(scope, receive, send):
    query = _query(scope["query_string"].decode())
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    if scope["path"] == "/ws/lazy":
        await asyncio.sleep(float(query.get("delay", 0)))
        count = total = 0
        while count < int(query.get("count", 1)):
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            count, total = count + 1, total + len(message.get("bytes") or b"")
        await send({"type": "websocket.send", "text": f"{count} {total}"})
    while (message := await receive())["type"] == "websocket.receive":
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})


# -- native -------------------------------------------------------------------------

async def web_body(request):
    await asyncio.sleep(float(request.query.get("delay", 0)))
    body = await request.content.read()
    return web.Response(text=f"{len(body)} {zlib.crc32(body)}")


async def web_echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


async def web_lazy(request):
    ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE)
    await ws.prepare(request)
    await asyncio.sleep(float(request.query.get("delay", 0)))
    count = total = 0
    while count < int(request.query.get("count", 1)):
        msg = await ws.receive()
        if msg.type != web.WSMsgType.BINARY:
            return ws
        count, total = count + 1, total + len(msg.data)
    await ws.send_str(f"{count} {total}")
    async for _ in ws:
        pass
    return ws


web_app = web.Application()
web_app.router.add_post("/body", web_body)
web_app.router.add_get("/ws/echo", web_echo)
web_app.router.add_get("/ws/lazy", web_lazy)


# -- WSGI -----------------------------------------------------------------------------

def wsgi_app(environ, start_response):
    time.sleep(float(_query(environ.get("QUERY_STRING", "")).get("delay", 0)))
    stream = environ["wsgi.input"]
    size = crc = 0
    while block := stream.read(65536):
        size, crc = size + len(block), zlib.crc32(block, crc)
    answer = f"{size} {crc}".encode()
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]
