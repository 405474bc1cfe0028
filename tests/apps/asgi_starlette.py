"""A real Starlette app served as ASGI: routes, streaming, uploads, lifespan state, files, WebSocket.

Routes:

* ``/``                 plain text ``hello from starlette``
* ``/items/{id}?q=``    JSON with the path parameter, the query and ``root_path``
* ``/state``            JSON of what the lifespan startup put in the state
* ``/stream/{key}?n=``  a StreamingResponse of ``n`` lines; after each line it waits until
                        ``/stream/{key}/next`` is requested (so the client must have the
                        line before the next one exists)
* ``/stream/{key}/next`` lets the stream ``key`` produce its next line
* ``/upload``           reads ``request.stream()`` piece by piece; JSON with the piece
                        sizes and the total; ``/upload/progress`` tells how many bytes
                        the running upload has read so far
* ``/form``             a form POST (python-multipart) echoed as JSON
* ``/file``             a FileResponse of the sample file (``http.response.pathsend``)
* ``/error``            raises (Starlette's error middleware answers 500)
* ``/background``       answers, then a background task records ``done``; ``/background/result``
* ``/ws``               WebSocket: echoes text as ``echo: <text>``, bytes reversed, and
                        closes with code 4000 when it receives ``bye``
* ``/ws-deny``          WebSocket closed before accept (403 denial)

The lifespan writes ``startup`` and ``shutdown`` lines to the file named by
``ASGI_LIFESPAN_LOG`` when that variable is set.
"""

import asyncio
import contextlib
import os

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sample_data import sample_path

_gates: dict[str, asyncio.Event] = {}
_upload = {"read": 0}
_background = {"done": False}


def _log_lifespan(line: str) -> None:
    path = os.environ.get("ASGI_LIFESPAN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@contextlib.asynccontextmanager
async def lifespan(app):
    _log_lifespan("startup")
    yield {"started": True, "worker_pid": os.getpid()}
    _log_lifespan("shutdown")


async def home(request: Request):
    return PlainTextResponse("hello from starlette")


async def item(request: Request):
    return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q"),
                         "root_path": request.scope["root_path"], "path": request.url.path})


async def state(request: Request):
    return JSONResponse({"started": request.state.started, "worker_pid": request.state.worker_pid})


def _gate(key: str) -> asyncio.Event:
    return _gates.setdefault(key, asyncio.Event())


async def stream(request: Request):
    key = request.path_params["key"]
    count = int(request.query_params.get("n", "3"))

    async def lines():
        gate = _gate(key)
        for i in range(count):
            yield f"line {i}\n"
            if i + 1 < count:
                await gate.wait()
                gate.clear()

    return StreamingResponse(lines(), media_type="text/plain")


async def stream_next(request: Request):
    _gate(request.path_params["key"]).set()
    return PlainTextResponse("ok")


async def upload(request: Request):
    _upload["read"] = 0
    sizes = []
    async for piece in request.stream():
        if piece:
            sizes.append(len(piece))
            _upload["read"] += len(piece)
    return JSONResponse({"sizes": sizes, "total": sum(sizes)})


async def upload_progress(request: Request):
    return JSONResponse(_upload)


async def form(request: Request):
    data = await request.form()
    return JSONResponse({key: value for key, value in data.items()})


async def file(request: Request):
    return FileResponse(sample_path(), media_type="application/octet-stream")


async def error(request: Request):
    raise RuntimeError("boom from starlette")


async def background(request: Request):
    _background["done"] = False

    async def work():
        await asyncio.sleep(0)
        _background["done"] = True

    return PlainTextResponse("accepted", background=BackgroundTask(work))


async def background_result(request: Request):
    return JSONResponse(_background)


async def ws_echo(websocket: WebSocket):
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            if message["text"] == "bye":
                await websocket.close(code=4000, reason="bye")
                return
            await websocket.send_text("echo: " + message["text"])
        else:
            await websocket.send_bytes(message["bytes"][::-1])


async def ws_deny(websocket: WebSocket):
    await websocket.close()


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{id}", item),
        Route("/state", state),
        Route("/stream/{key}", stream),
        Route("/stream/{key}/next", stream_next),
        Route("/upload", upload, methods=["POST"]),
        Route("/upload/progress", upload_progress),
        Route("/form", form, methods=["POST"]),
        Route("/file", file),
        Route("/error", error),
        Route("/background", background),
        Route("/background/result", background_result),
        WebSocketRoute("/ws", ws_echo),
        WebSocketRoute("/ws-deny", ws_deny),
    ],
    lifespan=lifespan,
)
