"""WebSocketConnection's memory bounds over a real loopback server: the queue of unread
messages is bounded in payload bytes (decompressed), and reading pauses while the pongs
it writes wait for a client that does not read. (Through gunicorn, with the worker's RSS:
tests/hardening/test_faults_ws_memory.py.)"""

import asyncio
import zlib

from server.websocket import MsgType, Opcode
from server.websocket.frames import FrameParser
from test_websocket_connection import MiB, run, serving, wait_for
from ws_support import RawClient, masked, upgrade_request

DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate"


def deflated(payloads) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    frames = []
    for payload in payloads:
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        frames.append(masked(Opcode.BINARY, data[:-4], rsv1=True))
    return b"".join(frames)


def test_the_queue_is_bounded_in_decompressed_bytes():
    """Ten 300 KB messages, 1 KB each on the wire, with a 1 MiB queue: parsing stops at the
    fourth (1.2 MB queued); the rest stays compressed until the app takes them."""
    payloads = [bytes([i]) * 300_000 for i in range(10)]

    async def main():
        go = asyncio.Event()
        got = []

        async def handler(conn):
            await go.wait()
            while (message := await conn.receive()).type == MsgType.BINARY:
                got.append(message.data)

        async with serving(handler, max_queue_size=MiB) as server:
            raw = await RawClient.connect(server.port, upgrade_request("/", DEFLATE))
            raw.send(deflated(payloads))
            protocol = server.protocols[0]
            await wait_for(lambda: "websocket" in protocol._read_paused_by)
            conn = server.conns[0]
            assert len(conn._queue) == 4 and conn._queued_bytes == 1_200_000
            assert conn._parser.buffered > 0  # the rest, still compressed
            go.set()
            await wait_for(lambda: len(got) == 10)
            assert got == payloads
            assert "websocket" not in protocol._read_paused_by
            raw.close()

    run(main())


def test_reading_pauses_while_pongs_wait_and_resumes_when_they_drain():
    ping = masked(Opcode.PING, b"p" * 125)

    async def main():
        async def handler(conn):
            await conn.receive()

        async with serving(handler) as server:
            raw = await RawClient.connect(server.port)
            protocol = server.protocols[0]
            sent = 0
            while "websocket writes" not in protocol._read_paused_by:
                raw.send(ping * 1000)
                sent += 1000
                await asyncio.sleep(0)
                assert sent < 1_000_000, "reading never paused"
            assert protocol.writing_paused
            raw.parser = FrameParser(require_mask=False)
            pongs = 0
            while pongs < sent:
                message = await raw.receive()
                assert message.type == MsgType.PONG
                pongs += 1
            assert "websocket writes" not in protocol._read_paused_by
            raw.close()

    run(main())
