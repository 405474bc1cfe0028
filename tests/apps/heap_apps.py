"""Apps that report the worker's own Python heap, for the idle-connection memory test
(tests/hardening/test_idle_heap.py), one per app kind: ``asgi_app``, ``web_app`` (native)
and ``wsgi_app``.

* ``/heap/start``: starts tracing the worker's allocations (``tracemalloc``).
* ``/heap/now``: the bytes allocated since then and still held, after a full collection.
* anything else: ``ok``.
"""

import gc
import tracemalloc

from server import web


def _answer(path: str) -> bytes:
    if path == "/heap/start":
        tracemalloc.start()
    elif path == "/heap/now":
        gc.collect()
        return str(tracemalloc.get_traced_memory()[0]).encode()
    return b"ok"


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = _answer(scope["path"])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _web_any(request):
    return web.Response(body=_answer(request.path))


web_app = web.Application()
web_app.router.add_get("/{tail:.*}", _web_any)


def wsgi_app(environ, start_response):
    body = _answer(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
