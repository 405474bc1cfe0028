"""Apps that show what is left for the garbage collector: objects of a request that only a
collection frees (they hold each other) pile up while automatic collection is off.

    /gc-off              collect, then turn automatic collection off
    /gc-left?type=Name   the live objects of that type (then collection is back on)
    /gc-frozen           how many objects are frozen (gc.freeze: out of every collection)
    /gc-threshold        the collector's first threshold
    /gc-collect          collect everything, then answer how many collections ran so far
    /gc-connections      "OPEN CLOSED": connections still open (their protocol has a transport),
                         and closed ones not yet freed
    /gc-freed            collect, then answer how many closed connections that freed (those only
                         the collector could free); collection is back on
    /gc-hold?n=N         (ASGI) wait until N requests wait here, then answer how many
                         collections ran so far: N requests are in flight at once
    /read                (ASGI) read the request body by receive(), answer its length
    anything else        a hello (``/stream``: in three pieces, from a generator)

``wsgi_app``, ``asgi_app`` and ``web_app`` (native; the paths of ``_answer`` only).
"""

import asyncio
import gc


def _answer(path: str, query: str) -> bytes:
    if path == "/gc-off":
        gc.collect()
        gc.disable()
        return b"off"
    if path == "/gc-left":
        name = query.partition("=")[2]
        left = sum(1 for obj in gc.get_objects() if type(obj).__name__ == name)
        gc.enable()
        return b"%d" % left
    if path == "/gc-frozen":
        return b"%d" % gc.get_freeze_count()
    if path == "/gc-threshold":
        return b"%d" % gc.get_threshold()[0]
    if path == "/gc-collect":
        gc.collect()
        return b"%d" % collections_so_far()
    if path == "/gc-connections":
        return b"%d %d" % _connections()
    if path == "/gc-freed":
        closed = _connections()[1]
        gc.collect()
        gc.enable()
        return b"%d" % (closed - _connections()[1])
    return b"Hello, world!\n"


def _connections() -> tuple[int, int]:
    """(open, closed) of the worker's connections still in memory (a closed one may be held
    for a while by what served it last: an app thread's last work item)."""
    from server.protocol.server import ServerHttpProtocol
    still_open = closed = 0
    for obj in gc.get_objects():
        if isinstance(obj, ServerHttpProtocol):
            if obj.transport is None:
                closed += 1
            else:
                still_open += 1
    return still_open, closed


def collections_so_far() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


_held = []  # the futures of the requests waiting at /gc-hold


async def _hold(query: str) -> bytes:
    wanted = int(query.partition("=")[2])
    waiter = asyncio.get_running_loop().create_future()
    _held.append(waiter)
    if len(_held) >= wanted:
        for held in _held:
            held.set_result(None)
        _held.clear()
    await waiter
    return b"%d" % collections_so_far()


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (piece for piece in (b"a", b"b", b"c"))
    body = _answer(path, environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    query = scope["query_string"].decode()
    if scope["path"] == "/gc-hold":
        body = await _hold(query)
    elif scope["path"] == "/read":
        body = b"%d" % await _body_length(receive)
    else:
        body = _answer(scope["path"], query)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def _body_length(receive) -> int:
    length, more = 0, True
    while more:
        message = await receive()
        length += len(message.get("body", b""))
        more = message.get("more_body", False)
    return length


async def _web_any(request):
    from server import web
    return web.Response(body=_answer(request.path, request.query_string))


def _web_app():
    from server import web
    app = web.Application()
    app.router.add_get("/{tail:.*}", _web_any)
    return app


web_app = _web_app()
