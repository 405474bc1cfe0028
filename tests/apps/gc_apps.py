"""Apps that show what is left for the garbage collector: objects of a request that only a
collection frees (they hold each other) pile up while automatic collection is off.

    /gc-off              collect, then turn automatic collection off
    /gc-left?type=Name   the live objects of that type (then collection is back on)
    /gc-frozen           how many objects are frozen (gc.freeze: out of every collection)
    anything else        a hello (``/stream``: in three pieces, from a generator)
"""

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
    return b"Hello, world!\n"


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
    body = _answer(scope["path"], scope["query_string"].decode())
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
