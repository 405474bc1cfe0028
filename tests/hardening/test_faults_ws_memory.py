"""WebSocket clients that make the server hold memory, against a real worker, for ASGI and
native apps (tests/apps/memory_apps.py):

* a client flooding pings and never reading the pongs: reading pauses while the pongs wait
  in the transport, so the worker's memory stays bounded, and resumes once the client
  reads (every ping answered, in order); with the default minimum response rate the
  client is then closed;
* a client sending tiny compressed messages that each inflate to 16 MB to an app that does
  not read: the queue of unread messages is bounded in bytes (1 MiB, always at least one
  message), the rest waits compressed or in the socket, and every message arrives once
  the app reads.
"""

import asyncio
import zlib

import pytest

from hardening_support import MiB, RssSampler, is_asyncworker, the_worker
from helpers import Gunicorn
from server.websocket.deflate import DeflateParams, Inflater
from server.websocket.frames import FrameParser, MsgType, Opcode
from ws_support import RawClient, masked, upgrade_request

pytestmark = pytest.mark.skipif(not is_asyncworker(), reason="the WebSocket is this worker's")

RSS_BOUND = 48 * MiB
FLOOD = 100 * MiB  # of pings, at most: the old server read them all and queued the pongs
PING = masked(Opcode.PING, b"p" * 125)  # 131 bytes; its pong is 127
PINGS_PER_BLOCK = MiB // len(PING)
BLOCK = PING * PINGS_PER_BLOCK
STALL = 3.0  # seconds without progress that mean the server stopped reading
INFLATED = 16_000_000  # bytes of each compressed message once inflated
MESSAGES = 20
DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate"
KINDS = {"asgi": "memory_apps:asgi_app", "native": "memory_apps:web_app"}


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


def run(coro, timeout: float = 120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def deflate_client(port: int, path: str) -> RawClient:
    """A client that offered permessage-deflate and reads the server's compressed messages."""
    client = await RawClient.connect(port, upgrade_request(path, DEFLATE))
    assert client.status == 101 and b"permessage-deflate" in client.response_head
    client.parser = FrameParser(require_mask=False, deflate=Inflater(DeflateParams()))
    return client


async def flood_pings(client: RawClient) -> int:
    """Send ping blocks until FLOOD or until the server stops reading (or closes); the pings
    sent (the last block, stalled, still in the client's buffer, counts: it goes later)."""
    blocks = 0
    while blocks * len(BLOCK) < FLOOD:
        client.send(BLOCK)
        blocks += 1
        try:
            await asyncio.wait_for(client.writer.drain(), STALL)
        except (TimeoutError, ConnectionError):
            break
    return blocks * PINGS_PER_BLOCK


def test_ping_flood_without_reading_pauses_reading_and_resumes(kind, figure):
    """With the minimum response rate off, nothing ends the client: memory must stay bounded
    by pausing reading, and reading must resume when the client takes the pongs."""
    env = {"ASYNCWORKER_MIN_RESPONSE_RATE": "0"}
    with Gunicorn(KINDS[kind], env=env) as server:
        worker = the_worker(server)

        async def main():
            client = await RawClient.connect(server.port, upgrade_request("/ws/echo"))
            assert client.status == 101
            with RssSampler(worker) as sampler:
                pings = await flood_pings(client)
                await asyncio.sleep(0.5)
            scenario = f"{kind} WebSocket, pings flooded without reading the pongs"
            figure(scenario, "pings sent before the server stopped reading", pings)
            figure(scenario, "worker RSS growth", sampler.growth / MiB, "MiB", f"< {RSS_BOUND // MiB} MiB")
            assert pings * len(PING) < FLOOD, "the server read the whole flood"
            assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"
            client.send(masked(Opcode.TEXT, b"after the flood"))
            pongs = 0
            while (message := await client.receive(timeout=20)).type == MsgType.PONG:
                assert message.data == b"p" * 125
                pongs += 1
            assert (message.type, message.data) == (MsgType.TEXT, "after the flood")
            assert pongs == pings
            client.close()

        run(main())


def test_ping_flood_without_reading_is_closed_by_the_minimum_response_rate(kind, figure):
    """Which bound ends such a client: the minimum response rate, as for an HTTP client
    that stops reading (the transport stays paused for writing). The client's receive buffer
    is fixed: one the kernel grows would take megabytes of pongs, progress the rate counts."""
    env = {"ASYNCWORKER_RATE_GRACE": "2"}
    with Gunicorn(KINDS[kind], env=env) as server:

        async def main():
            client = await RawClient.connect(server.port, upgrade_request("/ws/echo"), receive_buffer=64 * 1024)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await flood_pings(client)
            await asyncio.sleep(5)  # the grace and a check or two, the client reading nothing
            assert await client.eof(timeout=10)
            figure(f"{kind} WebSocket, pings flooded without reading the pongs",
                   "seconds to the close (rate grace 2 s)", loop.time() - started)

        run(main())
        assert "reads the response slower than 240 bytes/s" in server.log_text()


def compressed_messages(count: int, size: int) -> bytes:
    """``count`` binary messages of ``size`` zero bytes, compressed (one context, RFC 7692)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    frames = []
    for _ in range(count):
        data = compressor.compress(bytes(size)) + compressor.flush(zlib.Z_SYNC_FLUSH)
        frames.append(masked(Opcode.BINARY, data[:-4], rsv1=True))
    return b"".join(frames)


def test_compressed_messages_to_an_app_that_does_not_read_are_held_in_bytes(kind, figure):
    """20 messages, 16 KB each on the wire and 16 MB inflated: the old queue of 16 messages
    held 300 MB and more; bounded in bytes, it holds one message."""
    delay = 5
    wire = compressed_messages(MESSAGES, INFLATED)
    with Gunicorn(KINDS[kind]) as server:
        worker = the_worker(server)

        async def main():
            loop = asyncio.get_running_loop()
            path = f"/ws/lazy?delay={delay}&count={MESSAGES}"
            client = await deflate_client(server.port, path)
            app_reads_at = loop.time() + delay  # (the app's sleep started before its accept)
            with RssSampler(worker) as sampler:
                client.send(wire)
                await client.writer.drain()
                await asyncio.sleep(app_reads_at - 1 - loop.time())
            scenario = f"{kind} WebSocket, {MESSAGES} x {len(wire) // MESSAGES} B messages inflating to 16 MB, unread"
            figure(scenario, "worker RSS growth", sampler.growth / MiB, "MiB", f"< {RSS_BOUND // MiB} MiB")
            assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"
            message = await client.receive(timeout=60)
            assert (message.type, message.data) == (MsgType.TEXT, f"{MESSAGES} {MESSAGES * INFLATED}")
            client.close()

        run(main())


def test_a_compressed_message_over_the_limit_is_refused_with_1009(kind):
    """A message that inflates past the max message size (16 MiB for ASGI by default, 17 MiB
    in the native app) is never held: the connection fails with 1009."""
    with Gunicorn(KINDS[kind]) as server:

        async def main():
            client = await deflate_client(server.port, "/ws/lazy?count=1")
            client.send(compressed_messages(1, 18 * MiB))
            message = await client.receive_close(timeout=30)
            assert message is not None and message.data == 1009
            client.close()

        run(main())
