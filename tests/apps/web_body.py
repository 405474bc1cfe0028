"""Native handlers reading request bodies, for tests/test_web_body.py.

POST /reader/{method} applies one StreamReader method to ``request.content``
and answers what it saw as JSON; /upload and /form take big uploads.
``forms_app`` serves /form with the default caps (client_max_size, max_form_*),
for tests/integration/test_web_forms.py.
"""

import asyncio
import os
import zlib

from server import web

app = web.Application(client_max_size=200 * 1024 * 1024)


def _text(data: bytes) -> str:
    return data.decode("latin-1")


async def reader(request):
    method = request.match_info["method"]
    content = request.content
    n = int(request.query.get("n", "0"))
    if method == "read":
        data = await content.read()
        return web.json_response({"data": _text(data)})
    if method == "read_n":
        pieces = []
        while piece := await content.read(n):
            pieces.append(_text(piece))
        return web.json_response({"pieces": pieces})
    if method == "readany":
        pieces = []
        while piece := await content.readany():
            pieces.append(_text(piece))
        return web.json_response({"pieces": pieces})
    if method == "readexactly":
        try:
            data = await content.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return web.json_response({"incomplete": _text(exc.partial), "expected": exc.expected})
        return web.json_response({"data": _text(data), "rest": _text(await content.read())})
    if method == "readline":
        lines = []
        while line := await content.readline():
            lines.append(_text(line))
        return web.json_response({"pieces": lines})
    if method == "readuntil":
        separator = request.query["sep"].encode()
        pieces = []
        while piece := await content.readuntil(separator):
            pieces.append(_text(piece))
        return web.json_response({"pieces": pieces})
    if method == "readchunk":
        chunks = []
        while True:
            data, end = await content.readchunk()
            if not data and not end:
                break
            chunks.append([_text(data), end])
        return web.json_response({"chunks": chunks})
    if method == "iter_chunked":
        return web.json_response({"pieces": [_text(p) async for p in content.iter_chunked(n)]})
    if method == "iter_any":
        return web.json_response({"pieces": [_text(p) async for p in content.iter_any()]})
    if method == "iter_chunks":
        return web.json_response({"chunks": [[_text(d), e] async for d, e in content.iter_chunks()]})
    if method == "lines":
        return web.json_response({"pieces": [_text(line) async for line in content]})
    if method == "read_nowait":
        await content.wait_eof()
        eof_before = content.at_eof()
        data = content.read_nowait()
        return web.json_response({"data": _text(data), "eof_before": eof_before, "eof_after": content.at_eof()})
    if method == "unread":
        first = await content.read(n)
        content.unread_data(first)
        return web.json_response({"data": _text(await content.read())})
    raise web.HTTPNotFound(text=f"no method {method}")


async def upload(request):
    """Count and checksum a body read with iter_chunked (any size)."""
    size, crc, largest = 0, 0, 0
    async for piece in request.content.iter_chunked(64 * 1024):
        size += len(piece)
        largest = max(largest, len(piece))
        crc = zlib.crc32(piece, crc)
    return web.json_response({"size": size, "crc": crc, "largest": largest})


async def form(request):
    fields = await request.post()
    out = {}
    for name, value in fields.items():
        if isinstance(value, web.FileField):
            crc, size = 0, 0
            while block := value.file.read(1 << 20):
                crc = zlib.crc32(block, crc)
                size += len(block)
            out[name] = {"filename": value.filename, "content_type": value.content_type, "size": size,
                         "crc": crc, "on_disk": os.fstat(value.file.fileno()).st_size}
            value.file.close()
        else:
            out[name] = value
    return web.json_response(out)


async def parts(request):
    """multipart() read incrementally: each part's name and size, reading 1000 bytes at a time."""
    reader = await request.multipart()
    seen = []
    async for part in reader:
        size, reads = 0, 0
        while data := await part.read_chunk(1000):
            size += len(data)
            reads += 1
        seen.append({"name": part.name, "filename": part.filename, "size": size, "reads": reads})
    return web.json_response(seen)


app.router.add_post("/reader/{method}", reader)
app.router.add_post("/upload", upload)
app.router.add_post("/form", form)
app.router.add_post("/parts", parts)

forms_app = web.Application()
forms_app.router.add_post("/form", form)
