"""Apps that report errors the way apps do: through ``wsgi.errors``, and by an exception in a
loop callback that nobody retrieves (what asyncio itself reports)."""

import asyncio


def wsgi_app(environ, start_response):
    environ["wsgi.errors"].write("a message from the app to wsgi.errors\n")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _fail_in_a_callback():
    raise ZeroDivisionError("a failing loop callback")


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    asyncio.get_running_loop().call_soon(_fail_in_a_callback)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
