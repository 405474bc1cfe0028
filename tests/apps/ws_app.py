"""Native WebSocket handlers for tests/test_websocket_interop.py (served by a real AsyncWorker).

What a handler observed (the close code it saw, the messages it got) is kept in
``observed`` under the key in the URL and read back with GET /observed/{key}.
"""

import asyncio

from server import web

MiB = 1024 * 1024

app = web.Application()
observed: dict[str, list] = {}


def note(request, *items) -> None:
    key = request.query.get("key")
    if key:
        observed.setdefault(key, []).extend(items)


async def echo(request):
    ws = web.WebSocketResponse(max_msg_size=int(request.query.get("max", 17 * MiB)),
                               compress=request.query.get("compress", "1") == "1")
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
        elif msg.type == web.WSMsgType.ERROR:
            note(request, ["error", ws.close_code])
    note(request, ["end", ws.close_code])
    return ws


async def client_closes(request):
    """Records the client's close frame as the handler sees it."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    msg = await ws.receive()
    note(request, [msg.type.name, msg.data, msg.extra], ["after", (await ws.receive()).type.name])
    return ws


async def server_closes(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.receive_str()
    closed_now = await ws.close(code=4000, message=b"server says bye")
    note(request, ["closed", closed_now, ws.close_code, await ws.close()])
    return ws


async def returns_open(request):
    """Returns without closing: the server closes with 1000 for it."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("bye")
    return ws


async def fails(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.receive()
    raise RuntimeError("handler failed after the upgrade")


async def json_echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    data = await ws.receive_json()
    await ws.send_json({"got": data})
    await ws.close()
    return ws


async def subprotocol(request):
    ws = web.WebSocketResponse(protocols=("v2.chat", "v1.chat"))
    ready = ws.can_prepare(request)
    ws.headers["X-Ready"] = str(bool(ready))
    ws.set_cookie("session", "abc")
    await ws.prepare(request)
    await ws.send_str(ws.ws_protocol or "none")
    await ws.receive()
    return ws


async def heartbeat(request):
    ws = web.WebSocketResponse(heartbeat=float(request.query.get("every", "0.3")))
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
    note(request, ["end", ws.close_code, repr(ws.exception())])
    return ws


async def manual_ping(request):
    """autoping off: pings and pongs are messages; the handler answers pings itself."""
    ws = web.WebSocketResponse(autoping=False)
    await ws.prepare(request)
    await ws.ping(b"from-server")
    async for msg in ws:
        if msg.type == web.WSMsgType.PING:
            await ws.pong(msg.data)
            note(request, ["ping", msg.data.decode()])
        elif msg.type == web.WSMsgType.PONG:
            note(request, ["pong", msg.data.decode()])
        else:
            await ws.send_str(msg.data)
    return ws


async def waits(request):
    """Waits for the client until the worker shuts down."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("ready")
    msg = await ws.receive()
    note(request, ["end", msg.type.name, ws.close_code])
    return ws


async def misuse(request):
    """Type errors, the receive timeout and receiving past the end, as the handler sees them."""
    ws = web.WebSocketResponse(receive_timeout=0.2)
    await ws.prepare(request)
    try:
        await ws.receive()
    except asyncio.TimeoutError:
        note(request, "timeout")
    await ws.send_str("timed out")
    for call in (ws.receive_bytes(), ws.send_str(b"not str"), ws.send_bytes("not bytes")):
        try:
            await call
        except TypeError:
            note(request, "TypeError")
    ends = [(await ws.receive(timeout=10)).type.name for _ in range(5)]
    try:
        await ws.receive()
    except RuntimeError:
        ends.append("RuntimeError")
    note(request, ends)
    return ws


async def get_observed(request):
    key = request.match_info["key"]
    for _ in range(200):  # the handler may still be finishing
        if observed.get(key):
            break
        await asyncio.sleep(0.025)
    return web.json_response(observed.get(key, []))


async def health(request):
    return web.Response(text="ok")


app.router.add_get("/health", health)
app.router.add_get("/echo", echo)
app.router.add_get("/client-closes", client_closes)
app.router.add_get("/server-closes", server_closes)
app.router.add_get("/returns-open", returns_open)
app.router.add_get("/fails", fails)
app.router.add_get("/json", json_echo)
app.router.add_get("/subprotocol", subprotocol)
app.router.add_get("/heartbeat", heartbeat)
app.router.add_get("/manual-ping", manual_ping)
app.router.add_get("/waits", waits)
app.router.add_get("/misuse", misuse)
app.router.add_get("/observed/{key}", get_observed)
