"""True streaming from native handlers, seen by real clients reading incrementally.

The gated tests prove it without timing: the handler writes a line and waits
for the client to acknowledge it before writing the next one, so a server that
held writes back would deadlock (the handler gives up after GATE_TIMEOUT and
the test fails). The other tests run the streaming examples users write.
"""

import asyncio
import json
import socket
import struct
import time
import zlib

import aiohttp
import httpx
import pytest

from helpers import Gunicorn, connect, read_response, wait_until
from web_streaming import LINE, SLEEP_CHUNK

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server():
    with Gunicorn("web_streaming:app") as srv:
        yield srv


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _read_gated(server, mode: str, key: str, n: int, headers=None):
    """Read n lines with the aiohttp client, acknowledging each one before the next is written."""
    lines = []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.base_url}/gated/{mode}/{key}?n={n}", headers=headers) as resp:
            assert resp.status == 200
            for i in range(n):
                lines.append(await resp.content.readline())
                async with session.get(f"{server.base_url}/ack/{key}") as ack:
                    assert ack.status == 200
            assert await resp.content.read() == b""
            return resp.headers, lines


@pytest.mark.parametrize("mode", ["plain", "chunked", "gzip", "deflate"])
def test_each_write_reaches_the_client_before_the_next(server, mode):
    headers, lines = run(_read_gated(server, mode, f"gate-{mode}", 5))
    assert lines == [LINE.format(i).encode() for i in range(5)]
    if mode == "plain":
        assert headers["Content-Length"] == str(5 * len(LINE.format(0)))
    else:
        assert headers["Transfer-Encoding"] == "chunked"
    if mode in ("gzip", "deflate"):
        assert headers["Content-Encoding"] == mode
        assert "Accept-Encoding" in headers["Vary"]


def test_negotiated_compression_streams_with_httpx(server):
    """httpx decodes gzip as it arrives: iter_lines yields each line before the next write."""
    key = "gate-httpx"
    with httpx.Client(timeout=30) as client:
        with client.stream("GET", f"{server.base_url}/gated/negotiated/{key}?n=4",
                           headers={"Accept-Encoding": "gzip"}) as resp:
            assert resp.headers["content-encoding"] == "gzip"
            got = []
            for line in resp.iter_lines():
                got.append(line)
                if len(got) < 4:
                    assert client.get(f"{server.base_url}/ack/{key}").status_code == 200
    assert got == [LINE.format(i).rstrip("\n") for i in range(4)]


def test_negotiation_without_accept_encoding_sends_identity(server):
    with connect(server.port) as sock:
        sock.sendall(b"GET /sleepy?compress=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        resp = read_response(sock)
    assert resp.header("Content-Encoding") is None
    assert resp.body.count(b"Chunk") == 5


def test_raw_compressed_chunks_decode_one_by_one(server):
    """Each HTTP chunk of a compressed stream decodes on its own (sync flush per write)."""
    key = "gate-raw"
    with connect(server.port, timeout=30) as sock, sock.makefile("rb") as reader:
        sock.sendall(f"GET /gated/gzip/{key}?n=3 HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        while reader.readline() != b"\r\n":
            pass
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for i in range(3):
            size = int(reader.readline().strip(), 16)
            data = reader.read(size + 2)[:-2]
            assert inflater.decompress(data) == LINE.format(i).encode()
            if i < 2:
                with httpx.Client() as client:
                    client.get(f"{server.base_url}/ack/{key}")


def test_json_lines_are_read_one_by_one(server):
    async def main():
        seen = []
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.base_url}/jsonl/jl?n=6") as resp:
                assert resp.headers["Content-Type"] == "application/x-ndjson"
                async for line in resp.content:
                    seen.append(json.loads(line)["seq"])
                    if len(seen) < 6:
                        await (await session.get(f"{server.base_url}/ack/jl")).read()
        return seen

    assert run(main()) == list(range(6))


def test_chunks_with_sleeps_arrive_as_written(server):
    """The issue's example: the first chunk is at the client long before the last is written."""
    async def main():
        arrivals = []
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.base_url}/sleepy") as resp:
                async for line in resp.content:
                    arrivals.append((time.monotonic(), line))
        return arrivals

    arrivals = run(main())
    assert [line.split()[:2] for _, line in arrivals] == [[b"Chunk", str(i).encode()] for i in range(5)]
    first_arrival = arrivals[0][0]
    last_written = float(arrivals[-1][1].split()[2])  # the same monotonic clock (one machine)
    assert first_arrival < last_written
    assert last_written - float(arrivals[0][1].split()[2]) >= 4 * SLEEP_CHUNK * 0.9


def test_compressed_sleepy_stream_decodes(server):
    async def main():
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.base_url}/sleepy?compress=1",
                                   headers={"Accept-Encoding": "deflate"}) as resp:
                assert resp.headers["Content-Encoding"] == "deflate"
                return [line async for line in resp.content]

    lines = run(main())
    assert [line.split()[1] for line in lines] == [b"0", b"1", b"2", b"3", b"4"]


def test_async_generator_feeding_write(server):
    with httpx.Client(timeout=30) as client:
        with client.stream("GET", f"{server.base_url}/generator?count=40") as resp:
            pieces = list(resp.iter_raw())
    assert b"".join(pieces) == b"".join(f"{i}\n".encode() for i in range(40))
    assert len(pieces) > 1  # the pieces were not gathered into one


def test_rate_limited_stream(server):
    size, rate = 96 * 1024, 128 * 1024  # about 0.75 s
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        body = client.get(f"{server.base_url}/rate?size={size}&rate={rate}").content
    assert body == b"r" * size
    assert time.monotonic() - started >= size / rate * 0.9  # the limit held (a lower bound)


def test_client_disconnect_mid_stream(server):
    """The handler's next write raises ConnectionResetError; the server logs nothing alarming."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /endless/gone HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"tick" not in received:  # the head may come alone, before the first write
            data = sock.recv(65536)
            assert data
            received += data
    with httpx.Client(timeout=10) as client:
        observed = wait_until(lambda: client.get(f"{server.base_url}/observed/gone").json().get("error"),
                              10, what="the handler's write to fail")
        assert observed == "ConnectionResetError"
        assert client.get(f"{server.base_url}/ack/x").text == "ok"  # the worker still serves
    log = server.log_text()
    assert "Traceback" not in log and "Error handling request" not in log
    assert "Client disconnected during GET /endless/gone" in log  # at debug level


def test_slow_reader_pauses_the_handler(server):
    """write() waits for drain: while the client reads nothing, the handler stops writing."""
    total = 64 * 1024 * 1024
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    with sock, httpx.Client(timeout=10) as client:
        sock.sendall(f"GET /flood/slow?total={total} HTTP/1.1\r\nHost: t\r\n\r\n".encode())

        def stalled():
            first = client.get(f"{server.base_url}/observed/slow").json().get("written", 0)
            time.sleep(0.3)
            second = client.get(f"{server.base_url}/observed/slow").json().get("written", 0)
            return first and first == second and second

        written = wait_until(stalled, 20, what="the handler to pause")
        assert written < 16 * 1024 * 1024  # socket buffers plus one write, not the whole body
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert f"Content-Length: {total}".encode() in head
        received = len(body)
        while received < total:
            data = sock.recv(1 << 20)
            assert data, "connection closed early"
            received += len(data)
        assert received == total
        assert client.get(f"{server.base_url}/observed/slow").json()["done"] is True


def test_http_10_client_gets_a_close_delimited_stream(server):
    with connect(server.port, timeout=10) as sock:
        sock.sendall(b"GET /sleepy HTTP/1.0\r\n\r\n")
        resp = read_response(sock)
    assert resp.header("Connection") == "close"
    assert resp.header("Transfer-Encoding") is None and resp.header("Content-Length") is None
    assert resp.body.count(b"Chunk") == 5


def test_client_reset_stops_a_handler_that_never_waits(server):
    """A handler writing as fast as it can learns of a reset on its next write, not after its loop."""
    total = 512 * 1024 * 1024
    sock = connect(server.port)
    sock.sendall(f"GET /flood/reset?total={total} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    with httpx.Client(timeout=10) as client:
        wait_until(lambda: "Client disconnected during GET /flood/reset" in server.log_text(), 20,
                   what="the handler to stop")
        record = client.get(f"{server.base_url}/observed/reset").json()
    assert "done" not in record and record["written"] < total
    assert "Error handling request" not in server.log_text()
