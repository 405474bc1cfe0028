"""Answers with what the app was told about its client: address, scheme, host, script name.

GET /slow?s=SECONDS sleeps first (requests in flight across a reload)."""

import json
import time

KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT",
        "SCRIPT_NAME", "PATH_INFO", "HTTP_REMOTE_USER", "HTTP_X_FORWARDED_FOR")


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ["QUERY_STRING"].partition("=")[2] or 0.2))
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    """The ASGI view of the same request: client and scheme from the scope."""
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def native_app():
    """The native view: ``request.remote`` and ``request.scheme`` (a factory, so that
    importing this module does not need the web layer)."""
    from server import web

    async def who(request):
        return web.json_response({"remote": request.remote, "scheme": request.scheme, "host": request.host})

    application = web.Application()
    application.router.add_get("/who", who)
    return application
