"""WebSocketConnection over a real loopback server (a small ServerHttpProtocol subclass),
against the ``websockets`` client and a raw client for frames that client refuses to send."""

import asyncio
import contextlib
import os

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as ClientClosed

from server.protocol.server import ServerConfig, ServerHttpProtocol
from server.websocket import (
    ConnectionClosed,
    HandshakeError,
    MsgType,
    Opcode,
    WebSocketConnection,
    accept,
    check_request,
)
from ws_support import RawClient, masked, upgrade_request

MiB = 1024 * 1024


class WSProtocol(ServerHttpProtocol):
    """Answers every request with a WebSocket handshake, then runs ``handler(conn)``."""

    def __init__(self, server):
        super().__init__(ServerConfig(keepalive=5))
        self.server = server

    def on_request(self, head):
        try:
            request = check_request(head)
        except HandshakeError as exc:
            self.handle_error(exc.status, exc.message, headers=exc.headers)
            return
        self.loop.create_task(self.run(request))

    async def run(self, request):
        accepted = accept(request, compress=self.server.compress)
        self.write(accepted.response)
        conn = WebSocketConnection(self, accepted.deflate, **self.server.options)
        self.server.conns.append(conn)
        conn.attach()
        try:
            await self.server.handler(conn)
        except ConnectionClosed:
            pass
        except Exception:
            await conn.close(1011)
            raise
        await conn.close()


class Server:
    def __init__(self, handler, compress=True, **options):
        self.handler = handler
        self.compress = compress
        self.options = options
        self.conns: list[WebSocketConnection] = []
        self.protocols: list[WSProtocol] = []
        self.port = None

    def factory(self):
        protocol = WSProtocol(self)
        self.protocols.append(protocol)
        return protocol

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}/"


@contextlib.asynccontextmanager
async def serving(handler, **options):
    server = Server(handler, **options)
    listener = await asyncio.get_running_loop().create_server(server.factory, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        for protocol in server.protocols:
            if protocol.transport is not None:
                protocol.transport.abort()


def run(coro, timeout=60):
    asyncio.run(asyncio.wait_for(coro, timeout))


async def echo(conn):
    while True:
        message = await conn.receive()
        if message.type == MsgType.TEXT:
            await conn.send_text(message.data)
        elif message.type == MsgType.BINARY:
            await conn.send_bytes(message.data)
        else:
            return


async def wait_for(condition, timeout=10.0):
    async def poll():
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def client(server, compression="deflate", **kwargs):
    kwargs.setdefault("max_size", None)
    return connect(server.url, compression=compression, proxy=None, **kwargs)


# -- interoperability with the websockets client --------------------------------------

@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_and_binary_of_every_size(compression):
    sizes = [0, 125, 126, 64 * 1024, 16 * MiB]

    async def main():
        async with serving(echo, max_message_size=16 * MiB) as server:
            async with client(server, compression) as ws:
                for size in sizes:
                    # random bytes do not compress: 16 MiB of them would be slow to deflate
                    data = os.urandom(size) if compression is None or size < MiB else b"0123456789" * (size // 10)
                    await ws.send(data)
                    assert await ws.recv() == data
                    text = "é" * (size // 2)
                    await ws.send(text)
                    assert await ws.recv() == text
            assert server.conns[0]._deflater is not None if compression else server.conns[0]._deflater is None
            await server.conns[0].wait_closed()
            assert server.conns[0].close_code == 1000

    run(main())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_fragmented_messages_are_reassembled(compression):
    async def main():
        async with serving(echo) as server:
            async with client(server, compression) as ws:
                await ws.send(["frag", "mented ", "tëxt"])
                assert await ws.recv() == "fragmented tëxt"
                await ws.send([b"\x00" * 1000, b"", b"\xff" * 3])
                assert await ws.recv() == b"\x00" * 1000 + b"\xff" * 3

    run(main())


def test_context_takeover_options_offered_by_the_client():
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    async def main():
        factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True,
                                                 server_max_window_bits=10, client_max_window_bits=9)
        async with serving(echo) as server:
            async with connect(server.url, extensions=[factory], compression=None, proxy=None) as ws:
                assert "server_max_window_bits=10" in ws.response.headers["Sec-WebSocket-Extensions"]
                for _ in range(3):
                    await ws.send("same text " * 200)
                    assert await ws.recv() == "same text " * 200

    run(main())


def test_pings_both_ways():
    async def handler(conn):
        await conn.ping(b"from server")
        message = await conn.receive()  # the client's text, after its ping was answered
        await conn.send_text(message.data)
        await conn.receive()

    async def main():
        async with serving(handler) as server:
            async with client(server) as ws:
                pong = await ws.ping(b"from client")
                await asyncio.wait_for(pong, 10)  # the server answered
                await ws.send("after ping")
                assert await ws.recv() == "after ping"

    run(main())


def test_without_auto_pong_pings_and_pongs_are_messages():
    seen = []

    async def handler(conn):
        await conn.ping(b"srv")
        while len(seen) < 2:
            message = await conn.receive()
            seen.append(message)
            if message.type == MsgType.PING:
                await conn.pong(message.data)

    async def main():
        async with serving(handler, auto_pong=False) as server:
            async with client(server, ping_interval=None) as ws:
                await asyncio.wait_for(await ws.ping(b"cli"), 10)
                await ws.wait_closed()
        assert sorted((m.type, m.data) for m in seen) == [(MsgType.PING, b"cli"), (MsgType.PONG, b"srv")]

    run(main())


def test_client_closes_with_a_code_and_reason():
    closes = []

    async def handler(conn):
        closes.append(await conn.receive())
        closes.append(await conn.receive())  # the same again: the end is sticky

    async def main():
        async with serving(handler) as server:
            async with client(server) as ws:
                await ws.close(4001, "client done")
                assert ws.close_code == 4001  # the server echoed it
            await server.conns[0].wait_closed()
        assert [(m.type, m.data, m.extra) for m in closes] == [(MsgType.CLOSE, 4001, "client done")] * 2

    run(main())


def test_server_closes_with_a_code_and_reason():
    async def handler(conn):
        await conn.close(4002, "server done")
        assert conn.closed and conn.close_code == 4002
        with pytest.raises(ConnectionClosed):
            await conn.send_text("too late")

    async def main():
        async with serving(handler) as server:
            async with client(server) as ws:
                with pytest.raises(ClientClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 4002 and info.value.rcvd.reason == "server done"
            await server.conns[0].wait_closed()

    run(main())


def test_oversize_message_closes_with_1009():
    async def main():
        async with serving(echo, max_message_size=1000) as server:
            async with client(server, compression=None) as ws:
                await ws.send(b"x" * 1000)
                assert await ws.recv() == b"x" * 1000
                await ws.send(b"x" * 1001)
                with pytest.raises(ClientClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 1009
        assert server.conns[0].close_code == 1009

    run(main())


def test_oversize_compressed_message_closes_with_1009():
    async def main():
        async with serving(echo, max_message_size=64 * 1024) as server:
            async with client(server) as ws:
                await ws.send("a" * (64 * 1024 + 1))  # a few hundred bytes once compressed
                with pytest.raises(ClientClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 1009

    run(main())


def test_graceful_shutdown_sends_1001():
    async def main():
        async with serving(echo) as server:
            async with client(server) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                server.protocols[0].closing()
                with pytest.raises(ClientClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 1001
            await server.conns[0].wait_closed()
            assert server.conns[0].close_code == 1001

    run(main())


# -- raw frames -------------------------------------------------------------------------

async def raw_failure(frames: bytes, **options):
    """Send ``frames`` after a handshake; return the server's close message, and whether it closed."""
    async with serving(echo, **options) as server:
        raw = await RawClient.connect(server.port)
        assert raw.status == 101
        raw.send(frames)
        close = await raw.receive_close()
        closed = await raw.eof()
        raw.close()
        return close, closed


@pytest.mark.parametrize("frames, code", [
    pytest.param(masked(Opcode.TEXT, b"bad \xff utf-8"), 1007, id="invalid-utf8"),
    pytest.param(masked(Opcode.TEXT, b"ok", fin=False) + masked(Opcode.CONTINUATION, b"\xed\xa0\x80"), 1007,
                 id="invalid-utf8-in-fragment"),
    pytest.param(masked(Opcode.CLOSE, b"\x03\xe8\xff"), 1007, id="close-reason-invalid-utf8"),
    pytest.param(b"\x81\x02hi", 1002, id="unmasked"),
    pytest.param(masked(0x3), 1002, id="reserved-opcode"),
    pytest.param(masked(Opcode.PING, b"x" * 126), 1002, id="long-ping"),
    pytest.param(masked(Opcode.TEXT, b"x", rsv1=True), 1002, id="rsv1-without-deflate"),
])
def test_protocol_errors_send_their_code_and_close(frames, code):
    async def main():
        close, closed = await raw_failure(frames, compress=False)
        assert close.type == MsgType.CLOSE and close.data == code
        assert closed

    run(main())


def test_bytes_sent_with_the_handshake_are_not_lost():
    async def main():
        async with serving(echo) as server:
            raw = await RawClient.connect(server.port, extra=masked(Opcode.TEXT, b"early") + masked(Opcode.PING, b"p"))
            assert raw.status == 101
            # the pong is written at once, the echo when the handler runs: either may come first
            got = {(m.type, m.data) for m in [await raw.receive(), await raw.receive()]}
            assert got == {(MsgType.TEXT, "early"), (MsgType.PONG, b"p")}
            raw.close_frame(1000)
            assert (await raw.receive_close()).data == 1000
            assert await raw.eof()
            raw.close()

    run(main())


@pytest.mark.parametrize("request_bytes, status, header", [
    (upgrade_request(version="12"), 426, b"Sec-WebSocket-Version: 13"),
    (upgrade_request(key="short"), 400, None),
    (upgrade_request().replace(b"Upgrade: websocket\r\n", b""), 400, None),
])
def test_handshake_failures(request_bytes, status, header):
    async def main():
        async with serving(echo) as server:
            raw = await RawClient.connect(server.port, request_bytes)
            assert raw.status == status
            if header:
                assert header in raw.response_head
            assert await raw.eof()
            raw.close()
            assert server.conns == []

    run(main())


def test_close_timeout_when_the_client_never_answers_close():
    async def handler(conn):
        await conn.close(1000)

    async def main():
        async with serving(handler, close_timeout=0.5) as server:
            raw = await RawClient.connect(server.port)
            assert (await raw.receive_close()).data == 1000
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await raw.eof(timeout=10)  # the server gives up waiting for our close frame
            assert loop.time() - started >= 0.4
            assert server.conns[0].close_code == 1006
            raw.close()

    run(main())


def test_keepalive_ping_timeout_fails_with_1011():
    async def main():
        async with serving(echo, ping_interval=0.2, ping_timeout=0.3) as server:
            raw = await RawClient.connect(server.port)
            ping = await raw.receive()
            assert ping.type == MsgType.PING and len(ping.data) == 4
            close = await raw.receive_close()  # no pong sent
            assert close.data == 1011
            assert await raw.eof()
            raw.close()

    run(main())


def test_keepalive_pings_answered_keep_the_connection_open():
    async def main():
        async with serving(echo, ping_interval=0.1, ping_timeout=5) as server:
            async with client(server, ping_interval=None) as ws:
                raw_pings = 0
                conn = server.conns[0]
                original = conn._keepalive_ping

                def counting():
                    nonlocal raw_pings
                    raw_pings += 1
                    original()
                conn._keepalive_ping = counting
                await wait_for(lambda: raw_pings >= 5)
                await ws.send("still here")
                assert await ws.recv() == "still here"
                assert not conn.closed

    run(main())


def test_read_backpressure_pauses_reading_until_messages_are_taken():
    async def main():
        go = asyncio.Event()
        got = []

        async def handler(conn):
            await go.wait()
            while (message := await conn.receive()).type == MsgType.BINARY:
                got.append(message.data)

        async with serving(handler, max_queue=4) as server:
            async with client(server, compression=None) as ws:
                sender = asyncio.ensure_future(asyncio.gather(*(ws.send(b"%05d" % i + b"x" * 65536)
                                                                for i in range(200))))
                protocol = server.protocols[0]
                await wait_for(lambda: "websocket" in protocol._read_paused_by)
                await asyncio.sleep(0.2)
                queued = len(server.conns[0]._queue)
                assert 4 <= queued < 200  # bounded: the rest waits in the socket and the client
                go.set()
                await sender
                await wait_for(lambda: len(got) == 200)
                assert [g[:5] for g in got] == [b"%05d" % i for i in range(200)]
                assert "websocket" not in protocol._read_paused_by

    run(main())


def test_write_backpressure_holds_the_sender():
    progress = []

    async def handler(conn):
        while True:
            await conn.send_bytes(b"y" * MiB)
            progress.append(1)

    async def main():
        async with serving(handler, compress=False) as server:
            raw = await RawClient.connect(server.port)  # never reads
            await wait_for(lambda: server.protocols[0].writing_paused)
            await asyncio.sleep(0.3)
            held = len(progress)
            await asyncio.sleep(0.3)
            assert len(progress) == held < 64  # the client is made to wait, not our memory to grow
            raw.close()

    run(main())


def test_connection_lost_without_close_frame_is_1006():
    ended = []

    async def handler(conn):
        ended.append(await conn.receive())

    async def main():
        async with serving(handler) as server:
            raw = await RawClient.connect(server.port)
            raw.close()
            await wait_for(lambda: ended)
            assert (ended[0].type, ended[0].data) == (MsgType.CLOSE, 1006)
            with pytest.raises(ConnectionClosed):
                await server.conns[0].send_text("x")

    run(main())


def test_concurrent_receive_is_refused():
    async def main():
        async with serving(echo) as server:
            async with client(server):
                await wait_for(lambda: server.conns and server.conns[0]._waiter is not None)
                with pytest.raises(RuntimeError):
                    await server.conns[0].receive()

    run(main())
