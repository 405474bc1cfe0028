"""The same hello world with aiohttp's own ``web``, as a baseline for benchmarks/apps/native_hello.py:

    python -m aiohttp.web -H 127.0.0.1 -P 8080 benchmarks.apps.aiohttp_hello:init_func
    gunicorn -k aiohttp.GunicornUVLoopWebWorker benchmarks.apps.aiohttp_hello:app

Same response as benchmarks/apps/hello.py: 200, text/plain, Content-Length, ``Hello, world!\\n``.
"""

from aiohttp import web

BODY = b"Hello, world!\n"


async def hello(request):
    return web.Response(body=BODY, content_type="text/plain")


def init_func(argv=None) -> web.Application:
    application = web.Application()
    application.router.add_get("/", hello)
    return application


app = init_func()
