"""The same app with aiohttp's own ``web``, as a baseline for benchmarks/apps/native_hello.py.

    python benchmarks/apps/serve_aiohttp.py --port 8080 aiohttp_hello:app

- ``/``: ``Hello, world!\\n``, text/plain, Content-Length;
- ``/chunked``: a ``StreamResponse`` of 16 writes of 4 KiB, no Content-Length (chunked);
- ``/100k``: 100 KiB of fixed bytes with their Content-Length;
- ``/file``: ``web.FileResponse`` of ``$BENCH_FILE`` (``X-Bench-Path: FileResponse``);
- ``POST /echo``: ``await request.read()`` (up to 4 MiB), answers the length;
- ``POST /form``: ``await request.post()``, answers ``<fields> <characters of the values>``.
"""

import os

from aiohttp import web

BODY = b"Hello, world!\n"
CHUNK = b"x" * 4096
CHUNKS = 16
BODY_100K = b"0123456789abcdef" * (100 * 1024 // 16)


async def hello(request):
    return web.Response(body=BODY, content_type="text/plain")


async def chunked(request):
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    for _ in range(CHUNKS):
        await response.write(CHUNK)
    await response.write_eof()
    return response


async def body_100k(request):
    return web.Response(body=BODY_100K, content_type="application/octet-stream")


async def file(request):
    path = os.environ.get("BENCH_FILE")
    if not path:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"X-Bench-Path": "FileResponse",
                                           "Content-Type": "application/octet-stream"})


async def echo(request):
    return web.Response(text=str(len(await request.read())))


async def form(request):
    data = await request.post()
    return web.Response(text="%d %d" % (len(data), sum(len(v) for v in data.values())))


def init_func(argv=None) -> web.Application:
    """For ``python -m aiohttp.web -H 127.0.0.1 -P 8080 aiohttp_hello:init_func``."""
    application = web.Application(client_max_size=4 * 1024 * 1024)
    application.router.add_get("/", hello)
    application.router.add_get("/chunked", chunked)
    application.router.add_get("/100k", body_100k)
    application.router.add_get("/file", file)
    application.router.add_post("/echo", echo)
    application.router.add_post("/form", form)
    return application


app = init_func()
