"""What each app kind is told about the Host of a request, as JSON, for
``test_host_authority.py``: WSGI's environ keys, the ASGI scope's ``host`` headers
and ``server``, the native ``request.host`` and ``request.url``."""

import json


def wsgi_app(environ, start_response):
    keys = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "PATH_INFO", "QUERY_STRING", "RAW_URI")
    body = json.dumps({key: environ.get(key) for key in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    hosts = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
    body = json.dumps({"host": hosts, "server": scope["server"], "path": scope["path"],
                       "query_string": scope["query_string"].decode()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def native_app():
    from server import web

    async def show(request):
        return web.json_response({"host": request.host, "url": request.url, "raw_path": request.raw_path,
                                  "path": request.path})

    application = web.Application()
    application.router.add_route("*", "/{tail:.*}", show)
    return application
