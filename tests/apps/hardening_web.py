"""Native app for the response-splitting tests: ``/split?where=name|value|status&char=...``
answers with a header name, header value or reason phrase carrying that character;
``/split-stream`` does the same on a streamed response; anything else is 200 with the path."""

from server import web

CHARS = {"cr": "\r", "lf": "\n", "nul": "\x00", "crlf": "\r\n"}


def _headers_and_reason(request):
    injected = CHARS[request.query.get("char", "crlf")] + "Set-Cookie: injected=1"
    where = request.query.get("where", "value")
    if where == "name":
        return {"X-Name" + injected: "v"}, None
    if where == "status":
        return {}, "OK" + injected
    return {"X-Value": "v" + injected}, None


async def split(request):
    headers, reason = _headers_and_reason(request)
    return web.Response(text="should not be sent", headers=headers, reason=reason)


async def split_stream(request):
    headers, reason = _headers_and_reason(request)
    response = web.StreamResponse(headers=headers, reason=reason)
    await response.prepare(request)
    await response.write(b"should not be sent")
    return response


async def other(request):
    return web.Response(text=request.path)


app = web.Application()
app.router.add_get("/split", split)
app.router.add_get("/split-stream", split_stream)
app.router.add_get("/{tail:.*}", other)
