"""ASGI app for the response-splitting tests: ``/split?where=name|value&char=cr|lf|nul|crlf``
sends a head whose header name or value carries that character; anything else is 200 with
the path. (ASGI has no reason phrase: the status is an int.)"""

from urllib.parse import parse_qs

CHARS = {"cr": "\r", "lf": "\n", "nul": "\x00", "crlf": "\r\n"}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
    if scope["path"] == "/split":
        injected = (CHARS[query.get("char", "crlf")] + "Set-Cookie: injected=1").encode("latin-1")
        if query.get("where") == "name":
            headers = [(b"x-name" + injected, b"v")]
        else:
            headers = [(b"x-value", b"v" + injected)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"should not be sent"})
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
