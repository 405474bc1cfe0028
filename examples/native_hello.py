"""A native app on the worker's loop: `gunicorn -k server.workers.AsyncWorker examples.native_hello:app`.

    curl http://127.0.0.1:8000/            # Hello, world!
    curl -N http://127.0.0.1:8000/stream   # five chunks, one every 0.2 s
    curl http://127.0.0.1:8000/users/42    # {"id": 42}
"""

import asyncio

from server import web


async def hello(request):
    return web.Response(text="Hello, world!\n")


async def stream(request):
    response = web.StreamResponse()
    response.content_type = "text/plain"
    await response.prepare(request)
    for i in range(5):
        await response.write(f"Chunk {i}\n".encode())
        await asyncio.sleep(0.2)
    await response.write_eof()
    return response


async def user(request):
    return web.json_response({"id": int(request.match_info["id"])})


app = web.Application()
app.router.add_get("/", hello)
app.router.add_get("/stream", stream)
app.router.add_get(r"/users/{id:\d+}", user)
