"""Native streaming handlers for tests/test_web_streaming.py (served by a real AsyncWorker).

The /gated handlers write a line, then wait until the client acknowledges it
(GET /ack/{key}) before writing the next: if the server held writes back, the
client would never see the line it must acknowledge and the handler gives up
after GATE_TIMEOUT with a cut response. The other handlers are the streaming
examples users write: chunks with sleeps, an async generator, JSON lines, a
rate-limited stream, a client that goes away, a slow reader.
"""

import asyncio
import json
import time

from server import web

GATE_TIMEOUT = 20.0
LINE = "line {:04d} " + "x" * 40 + "\n"  # every line has the same length
SLEEP_CHUNK = 0.25

app = web.Application()
gates: dict[str, asyncio.Queue] = {}
events: dict[str, dict] = {}  # per test key: what a handler observed


def gate(key: str) -> asyncio.Queue:
    return gates.setdefault(key, asyncio.Queue())


async def ack(request):
    gate(request.match_info["key"]).put_nowait(True)
    return web.Response(text="ok")


async def wait_ack(key: str) -> bool:
    try:
        await asyncio.wait_for(gate(key).get(), GATE_TIMEOUT)
        return True
    except asyncio.TimeoutError:
        return False


async def gated(request):
    """n lines, each written only after the previous one was acknowledged."""
    mode, key = request.match_info["mode"], request.match_info["key"]
    n = int(request.query.get("n", "5"))
    response = web.StreamResponse()
    response.content_type = "text/plain"
    if mode == "plain":
        response.content_length = n * len(LINE.format(0))
    elif mode == "chunked":
        response.enable_chunked_encoding()
    elif mode in ("gzip", "deflate"):
        response.enable_compression(force=mode)
    elif mode == "negotiated":
        response.enable_compression()
    await response.prepare(request)
    for i in range(n):
        await response.write(LINE.format(i).encode())
        if i < n - 1 and not await wait_ack(key):
            response.force_close()
            return response  # the response stays short: the client sees an error
    await response.write_eof()
    return response


async def json_lines(request):
    key = request.match_info["key"]
    n = int(request.query.get("n", "5"))
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    for i in range(n):
        await response.write(json.dumps({"seq": i, "written_at": time.monotonic()}).encode() + b"\n")
        if i < n - 1 and not await wait_ack(key):
            response.force_close()
            return response
    await response.write_eof()
    return response


async def sleepy_chunks(request):
    """The issue's example: write, sleep, write... Each line carries its write time."""
    response = web.StreamResponse()
    response.content_type = "text/plain"
    if request.query.get("compress"):
        response.enable_compression()
    await response.prepare(request)
    for i in range(5):
        await response.write(f"Chunk {i} {time.monotonic():.6f}\n".encode())
        await asyncio.sleep(SLEEP_CHUNK)
    await response.write_eof()
    return response


async def numbers(count: int):
    for i in range(count):
        await asyncio.sleep(0.01)
        yield f"{i}\n".encode()


async def generator_feed(request):
    response = web.StreamResponse()
    response.content_type = "text/plain"
    await response.prepare(request)
    async for piece in numbers(int(request.query.get("count", "50"))):
        await response.write(piece)
    await response.write_eof()
    return response


async def rate_limited(request):
    """``size`` bytes at ``rate`` bytes per second, in 4 KiB slices."""
    size, rate = int(request.query["size"]), int(request.query["rate"])
    response = web.StreamResponse()
    response.content_type = "application/octet-stream"
    response.content_length = size
    await response.prepare(request)
    started = time.monotonic()
    sent = 0
    while sent < size:
        piece = min(4096, size - sent)
        await response.write(b"r" * piece)
        sent += piece
        delay = started + sent / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await response.write_eof()
    return response


async def endless(request):
    """Writes until the client goes away; records how the write failed."""
    key = request.match_info["key"]
    record = events.setdefault(key, {"writes": 0})
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        while True:
            await response.write(b"tick\n" * 100)
            record["writes"] += 1
            await asyncio.sleep(0.02)
    except ConnectionResetError as exc:
        record["error"] = type(exc).__name__
        raise  # the server must take it quietly


async def flood(request):
    """Writes ``total`` bytes as fast as the client takes them; progress is in events."""
    key = request.match_info["key"]
    total = int(request.query["total"])
    record = events.setdefault(key, {"written": 0})
    response = web.StreamResponse()
    response.content_length = total
    await response.prepare(request)
    piece = b"f" * 65536
    while record["written"] < total:
        await response.write(piece[: total - record["written"]])
        record["written"] += min(len(piece), total - record["written"])
    record["done"] = True
    return response


async def observed(request):
    return web.json_response(events.get(request.match_info["key"], {}))


app.router.add_get("/ack/{key}", ack)
app.router.add_get("/gated/{mode}/{key}", gated)
app.router.add_get("/jsonl/{key}", json_lines)
app.router.add_get("/sleepy", sleepy_chunks)
app.router.add_get("/generator", generator_feed)
app.router.add_get("/rate", rate_limited)
app.router.add_get("/endless/{key}", endless)
app.router.add_get("/flood/{key}", flood)
app.router.add_get("/observed/{key}", observed)
