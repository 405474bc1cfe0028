"""Apps that answer ``/sleep?s=N`` after N seconds (requests kept in flight): ASGI and WSGI."""

import asyncio
import time
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    seconds = float(parse_qs(scope["query_string"].decode()).get("s", ["0"])[0])
    await asyncio.sleep(seconds)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ, start_response):
    """``/sleep?s=N`` after N seconds, on the app thread."""
    seconds = float(parse_qs(environ["QUERY_STRING"]).get("s", ["0"])[0])
    time.sleep(seconds)
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
