"""Plain-text hello world as a native app (server.web), for the benchmark suite:

    gunicorn -k server.workers.AsyncWorker benchmarks.apps.native_hello:app

Same response as benchmarks/apps/hello.py: 200, text/plain, Content-Length, ``Hello, world!\\n``.
"""

from server import web

BODY = b"Hello, world!\n"


async def hello(request):
    return web.Response(body=BODY, content_type="text/plain")


app = web.Application()
app.router.add_get("/", hello)
