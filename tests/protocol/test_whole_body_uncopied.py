"""A whole body of ``SEPARATE_BODY`` bytes or more goes to the transport beside its head,
as the very object the app gave (``writelines``: one writev on uvloop, no copy of head and
body into one bytes object); a smaller one goes in one write with its head. Either way the
client gets the same bytes, whatever part of them the socket takes at once."""

import asyncio
import ssl

import pytest
import trustme
import uvloop

from helpers import connected
from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol.response import SEPARATE_BODY
from server.protocol.server import ServerConfig


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class RecordingTransport:
    """Keeps the objects of each write call (``writelines`` as one call: one system call)."""

    def __init__(self):
        self.calls: list[list] = []

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data):
        self.calls.append([data])

    def writelines(self, pieces):
        self.calls.append(list(pieces))

    def is_closing(self):
        return False

    def close(self):
        pass

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0


def sized_app(body: bytes):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
    return app


def protocol_for(body: bytes, loop) -> ASGIServerHttpProtocol:
    return ASGIServerHttpProtocol(ASGIConfig(app=sized_app(body), log=QuietLog()),
                                  ServerConfig(log=QuietLog(), keepalive=5), loop=loop)


def written_calls(body: bytes) -> list[list]:
    async def main():
        transport = RecordingTransport()
        protocol = protocol_for(body, asyncio.get_running_loop())
        protocol.connection_made(transport)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        for _ in range(100):
            if transport.calls:
                break
            await asyncio.sleep(0)
        return transport.calls

    return uvloop.run(main())


def test_a_large_whole_body_is_written_as_it_came_beside_its_head():
    body = bytes(range(256)) * (SEPARATE_BODY // 256)
    assert len(body) == SEPARATE_BODY
    (call,) = written_calls(body)
    head, piece = call
    assert piece is body  # not a copy
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert b"content-length: %d\r\n" % len(body) in head.lower()


def test_a_small_whole_body_goes_in_one_write_with_its_head():
    body = b"s" * (SEPARATE_BODY - 1)
    (call,) = written_calls(body)
    (data,) = call
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\n" + body)


@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
@pytest.mark.parametrize("size", [SEPARATE_BODY - 1, SEPARATE_BODY, 8 * 1024 * 1024])
def test_the_client_gets_every_byte_of_a_whole_body(loop_kind, size):
    """8 MiB is more than the socket takes at once: the rest waits in the transport."""
    body = bytes(range(251)) * (size // 251) + b"e" * (size % 251)

    async def main():
        loop = asyncio.get_running_loop()
        theirs = await connected(protocol_for(body, loop))
        try:
            await loop.sock_sendall(theirs, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            received = bytearray()
            while b"\r\n\r\n" not in received:
                received += await loop.sock_recv(theirs, 65536)
            head, _, rest = bytes(received).partition(b"\r\n\r\n")
            assert b"content-length: %d" % size in head.lower()
            received = bytearray(rest)
            while len(received) < size:
                piece = await asyncio.wait_for(loop.sock_recv(theirs, 1 << 20), 10)
                assert piece, "the connection closed early"
                received += piece
            return bytes(received)
        finally:
            theirs.close()

    run = uvloop.run if loop_kind == "uvloop" else asyncio.run
    assert run(main()) == body


@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
def test_a_large_whole_body_through_tls_arrives_whole(loop_kind):
    """The TLS transports take the head and the body as a list too (each encrypts in turn)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    body = bytes(range(241)) * (3 * 1024 * 1024 // 241)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: protocol_for(body, loop), "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                      server_hostname="127.0.0.1")
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert b"content-length: %d" % len(body) in head.lower()
            return await asyncio.wait_for(reader.readexactly(len(body)), 10)
        finally:
            writer.close()
            server.close()

    run = uvloop.run if loop_kind == "uvloop" else asyncio.run
    assert run(main()) == body
