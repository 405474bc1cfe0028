"""ASGI apps with particular lifespan behaviours, for the lifespan tests.

* ``failing_startup``: answers ``lifespan.startup.failed`` ("database unreachable");
* ``raising_lifespan``: raises on the lifespan scope, as an app that does not support it;
  its HTTP side answers ``lifespan calls: <n>``;
* ``hanging_shutdown``: starts, then never answers ``lifespan.shutdown``.
"""

import asyncio

_lifespan_calls = []


async def _text(send, body: bytes):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def failing_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await _text(send, b"should not be served")


async def raising_lifespan(scope, receive, send):
    if scope["type"] == "lifespan":
        _lifespan_calls.append(scope["type"])
        raise RuntimeError(f"unsupported scope type {scope['type']}")
    await _text(send, b"lifespan calls: %d" % len(_lifespan_calls))


async def hanging_shutdown(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await asyncio.sleep(3600)
        return
    await _text(send, b"up")
