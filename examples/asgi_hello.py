"""A minimal ASGI app: `gunicorn -k server.workers.AsyncWorker examples.asgi_hello:app`.

The worker sees an async callable taking (scope, receive, send) and serves it as
ASGI on its event loop (force it with `--env ASYNCWORKER_APP_KIND=asgi`).
"""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan: nothing to set up (websocket: not handled here)
    body = b"Hello, world!\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
