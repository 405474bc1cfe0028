"""Raw ASGI apps for the ASGI server tests: the scope, body messages, errors and edge cases.

``app`` routes on ``scope["path"]`` below ``scope["root_path"]``:

* ``/scope``, ``/scope/...`` JSON of the scope (bytes shown as latin-1 text)
* ``/messages``          reads the body; JSON list of ``[len(body), more_body]`` per message
* ``/hold``              waits for ``/release`` before reading the body; then JSON with the
                         total and the largest message
* ``/release``           lets ``/hold`` read
* ``/wait-disconnect``   reads the body, answers nothing, waits for ``http.disconnect``,
                         then sends until ``send`` fails and records what happened
                         (``/last-event``)
* ``/last-event``        JSON of what the last ``/wait-disconnect`` recorded
* ``/raise-before``      raises before ``http.response.start``
* ``/raise-after``       sends the head and a first piece, then raises
* ``/no-response``       returns without sending anything
* ``/incomplete``        sends the head and a piece with ``more_body``, then returns
* ``/invalid/<case>``    sends an invalid message, catches the error and answers 200 with
                         ``<exception type>: <message>``
* ``/bad-header/<case>`` sends a head with an unsafe header (``crlf``, ``nul``, ``hop``)
* ``/chunks?n=``         ``n`` body messages of ``piece <i>\\n``, no Content-Length
* ``/trailers``          a chunked body with trailers (``http.response.trailers``)
* ``/sized-trailers``    trailers announced on a body with a Content-Length, sent whole; a
                         body message in place of the trailers (its error: ``/last-event``)
* ``/zerocopy``          the sample file with ``http.response.zerocopysend`` in two halves
* ``/pathsend``          the sample file with ``http.response.pathsend``
* ``/too-long``, ``/too-short`` a body longer / shorter than its Content-Length
* ``/after-complete``    sends one more body message after the response is complete
* ``/transfer-encoding`` sends a Transfer-Encoding header (ignored: the server frames the body)
* anything else          ``200 <scope path>``

WebSocket paths (``websocket_app``):

* ``/ws/scope``          accepts with the first offered subprotocol and headers, sends the
                         scope as JSON text, then echoes until the client leaves; records the
                         disconnect and whether a later ``send`` raised (``/last-event``)
* ``/ws/deny-response``  denies with a 401 response through ``websocket.http.response``
* ``/ws/raise-before``   raises before accepting; ``/ws/raise-after`` raises after accepting
* ``/ws/return``         accepts and returns; ``/ws/no-answer`` returns without accepting
* ``/ws/close``          accepts, then closes with 4001 "done"
* ``/ws/invalid``        accepts, sends an invalid message and reports the error as text

``asgi2_app`` is an ASGI 2 double callable (a class) answering ``asgi2 <path> <asgi version>``;
``asgi2_function`` is the same as a function (not detected: the kind must be forced).
"""

import asyncio
import json

from sample_data import SAMPLE, sample_path

_release = asyncio.Event()
_last_event: dict = {}


def _json_safe(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


async def respond(send, body: bytes, status: int = 200, headers=None):
    headers = list(headers or [(b"content-type", b"text/plain")])
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive) -> list:
    messages = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise RuntimeError(f"unexpected {message['type']}")
        messages.append(message)
        if not message.get("more_body", False):
            return messages


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await websocket_app(scope, receive, send)
        return
    if scope["type"] != "http":
        return  # no lifespan
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]  # route on the path below the mount point, as frameworks do
    handler = ROUTES.get(path)
    if handler is None:
        for prefix, prefixed in PREFIX_ROUTES.items():
            if path.startswith(prefix):
                await prefixed(scope, receive, send, path[len(prefix):])
                return
        await respond(send, b"200 " + scope["path"].encode())
        return
    await handler(scope, receive, send)


async def scope_view(scope, receive, send):
    await read_body(receive)
    safe = {k: _json_safe(v) for k, v in scope.items() if k not in ("state", "extensions")}
    safe["extensions"] = sorted(scope.get("extensions", {}))
    safe["state"] = type(scope.get("state")).__name__
    await respond(send, json.dumps(safe).encode(), headers=[(b"content-type", b"application/json")])


async def messages_view(scope, receive, send):
    messages = await read_body(receive)
    shape = [[len(m.get("body", b"")), m.get("more_body", False)] for m in messages]
    await respond(send, json.dumps(shape).encode())


async def hold(scope, receive, send):
    await _release.wait()
    _release.clear()
    messages = await read_body(receive)
    sizes = [len(m["body"]) for m in messages]
    await respond(send, json.dumps({"total": sum(sizes), "largest": max(sizes)}).encode())


async def release(scope, receive, send):
    _release.set()
    await respond(send, b"released")


async def wait_disconnect(scope, receive, send):
    """Waits for http.disconnect, then sends until send() fails (at most ~5 s)."""
    _last_event.clear()
    await read_body(receive)
    _last_event["waiting"] = True
    message = await receive()
    _last_event["received"] = message["type"]
    sends = 0
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(500):
            await send({"type": "http.response.body", "body": b"too late", "more_body": True})
            sends += 1
            await asyncio.sleep(0.01)
        _last_event["send"] = "no error"
    except OSError as exc:
        _last_event["send"] = type(exc).__name__
    _last_event["sends_before_error"] = sends
    _last_event["done"] = True


async def last_event(scope, receive, send):
    await respond(send, json.dumps(_last_event).encode())


async def raise_before(scope, receive, send):
    raise RuntimeError("failing before the response")


async def raise_after(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first piece", "more_body": True})
    raise RuntimeError("failing during the response")


async def no_response(scope, receive, send):
    return


async def incomplete(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})


INVALID = {
    "body-first": [{"type": "http.response.body", "body": b"x"}],
    "unknown-type": [{"type": "http.response.begin", "status": 200}],
    "status-str": [{"type": "http.response.start", "status": "200"}],
    "header-str": [{"type": "http.response.start", "status": 200, "headers": [("x-a", "b")]}],
    "body-str": [{"type": "http.response.start", "status": 200, "headers": []},
                 {"type": "http.response.body", "body": "text"}],
    "start-twice": [{"type": "http.response.start", "status": 200, "headers": []},
                    {"type": "http.response.start", "status": 200, "headers": []}],
    "not-a-dict": ["http.response.start"],
}


async def invalid(scope, receive, send, case):
    started = False
    try:
        for message in INVALID[case]:
            await send(message)
            started = started or message["type"] == "http.response.start"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".encode()
    else:
        error = b"no error"
    if started:
        await send({"type": "http.response.body", "body": error})
    else:
        await respond(send, error)


BAD_HEADERS = {
    "crlf": (b"x-injected", b"a\r\nInjected: yes"),
    "nul": (b"x-nul", b"a\x00b"),
    "hop": (b"connection", b"close"),
    "name": (b"bad name", b"value"),
}


async def bad_header(scope, receive, send, case):
    await send({"type": "http.response.start", "status": 200, "headers": [BAD_HEADERS[case]]})
    await send({"type": "http.response.body", "body": b"should never be sent"})


async def chunks(scope, receive, send):
    n = int(dict(p.split(b"=") for p in scope["query_string"].split(b"&") if p).get(b"n", b"3"))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for i in range(n):
        await send({"type": "http.response.body", "body": b"piece %d\n" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def trailers(scope, receive, send):
    assert "http.response.trailers" in scope["extensions"]
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]})
    await send({"type": "http.response.body", "body": b"body with trailers", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})


async def zerocopy(scope, receive, send):
    half = len(SAMPLE) // 2
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(SAMPLE))]})
    with open(sample_path(), "rb") as file:
        await send({"type": "http.response.zerocopysend", "file": file, "count": half, "more_body": True})
        await send({"type": "http.response.zerocopysend", "file": file})


async def pathsend(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.pathsend", "path": sample_path()})


async def sized_trailers(scope, receive, send):
    _last_event.clear()
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"sized"})
    try:
        await send({"type": "http.response.body", "body": b"more"})
        _last_event["send"] = "no error"
    except Exception as exc:
        _last_event["send"] = f"{type(exc).__name__}: {exc}"
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})


async def too_long(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"0123456789"})


async def too_short(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"50")]})
    await send({"type": "http.response.body", "body": b"short"})


async def transfer_encoding(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"transfer-encoding", b"gzip, chunked"), (b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"abc"})


async def after_complete(scope, receive, send):
    await respond(send, b"complete")
    await send({"type": "http.response.body", "body": b"ignored"})


ROUTES = {
    "/scope": scope_view, "/messages": messages_view, "/hold": hold, "/release": release,
    "/wait-disconnect": wait_disconnect, "/last-event": last_event,
    "/raise-before": raise_before, "/raise-after": raise_after, "/no-response": no_response,
    "/incomplete": incomplete, "/chunks": chunks, "/trailers": trailers, "/sized-trailers": sized_trailers,
    "/zerocopy": zerocopy,
    "/pathsend": pathsend, "/too-long": too_long, "/too-short": too_short,
    "/after-complete": after_complete, "/transfer-encoding": transfer_encoding,
}
PREFIX_ROUTES = {"/invalid/": invalid, "/bad-header/": bad_header,
                 "/scope/": lambda scope, receive, send, rest: scope_view(scope, receive, send)}


class asgi2_app:  # noqa: N801 (an ASGI 2 app is a class called with the scope)
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            return
        await respond(send, b"asgi2 " + self.scope["path"].encode()
                      + b" " + self.scope["asgi"]["version"].encode())


def asgi2_function(scope):
    """An ASGI 2 app as a plain function: served only with ASYNCWORKER_APP_KIND=asgi."""
    return asgi2_app(scope)


async def websocket_app(scope, receive, send):
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"][len(scope.get("root_path", "")):]
    if path == "/ws/scope":
        await ws_scope_echo(scope, receive, send)
    elif path == "/ws/deny-response":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"x-denied", b"yes")]})
        await send({"type": "websocket.http.response.body", "body": b"not ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"allowed"})
    elif path == "/ws/raise-before":
        raise RuntimeError("websocket failing before accept")
    elif path == "/ws/raise-after":
        await send({"type": "websocket.accept"})
        raise RuntimeError("websocket failing after accept")
    elif path == "/ws/return":
        await send({"type": "websocket.accept"})
    elif path == "/ws/close":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "done"})
    elif path == "/ws/invalid":
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.send", "text": "a", "bytes": b"b"})
        except RuntimeError as exc:
            await send({"type": "websocket.send", "text": f"{type(exc).__name__}: {exc}"})
        await send({"type": "websocket.close"})


async def ws_scope_echo(scope, receive, send):
    _last_event.clear()
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None,
                "headers": [(b"x-accepted", b"1")]})
    safe = {k: _json_safe(v) for k, v in scope.items() if k not in ("state", "extensions")}
    safe["extensions"] = sorted(scope.get("extensions", {}))
    await send({"type": "websocket.send", "text": json.dumps(safe)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            _last_event.update(received=message["type"], code=message["code"], reason=message.get("reason"))
            break
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
    try:
        await send({"type": "websocket.send", "text": "too late"})
        _last_event["send"] = "no error"
    except OSError as exc:
        _last_event["send"] = type(exc).__name__
    _last_event["done"] = True
