"""Body pieces written during one pass of the loop go out in one transport write (one
system call), never held past that pass, and at once past CORK_LIMIT bytes."""

import asyncio

import uvloop

from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol.server import CORK_LIMIT, ServerConfig

PIECE = b"x" * 4096


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class CountingTransport:
    """Keeps each write call (``writelines`` as one call, as it is one system call)."""

    def __init__(self):
        self.calls: list[bytes] = []

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data):
        self.calls.append(bytes(data))

    def writelines(self, pieces):
        self.calls.append(b"".join(pieces))

    def is_closing(self):
        return False

    def close(self):
        pass

    def can_write_eof(self):
        return False

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0

    @property
    def body(self) -> bytes:
        """The chunked body written so far, unframed."""
        data = b"".join(self.calls).partition(b"\r\n\r\n")[2]
        out = []
        while data:
            size, _, data = data.partition(b"\r\n")
            n = int(size, 16)
            out.append(data[:n])
            data = data[n + 2:]
        return b"".join(out)


async def serve(app) -> CountingTransport:
    loop = asyncio.get_running_loop()
    protocol = ASGIServerHttpProtocol(ASGIConfig(app=app, log=QuietLog()), ServerConfig(log=QuietLog(), keepalive=5),
                                      loop=loop)
    transport = CountingTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    return transport


async def until_ended(transport: CountingTransport) -> None:
    for _ in range(100):
        if transport.calls and transport.calls[-1].endswith(b"0\r\n\r\n"):
            return
        await asyncio.sleep(0)
    raise AssertionError("the response did not end")


def streaming_app(pieces: int, between=None):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(pieces):
            await send({"type": "http.response.body", "body": PIECE, "more_body": True})
            if between is not None:
                await between(i)
        await send({"type": "http.response.body", "body": b""})
    return app


def test_pieces_of_one_pass_go_out_in_one_write():
    async def main():
        transport = await serve(streaming_app(8))
        await until_ended(transport)
        return transport

    transport = uvloop.run(main())
    # The head and the eight pieces in one write, then the end: not one write per piece.
    assert len(transport.calls) == 2, [len(c) for c in transport.calls]
    assert transport.calls[0].startswith(b"HTTP/1.1 200 ")
    assert transport.body == PIECE * 8


def test_a_piece_is_never_held_past_its_pass_of_the_loop():
    seen = []

    async def main():
        transport = None

        async def between(i):
            await asyncio.sleep(0)  # the app yields: what it wrote must be out now
            seen.append(transport.body)

        transport = await serve(streaming_app(3, between))
        await until_ended(transport)
        return transport

    transport = uvloop.run(main())
    assert seen == [PIECE, PIECE * 2, PIECE * 3]
    assert transport.body == PIECE * 3


def test_past_the_cork_limit_the_pieces_go_out_at_once():
    pieces = 2 * CORK_LIMIT // len(PIECE) + 3  # more than twice the limit in one pass

    async def main():
        transport = await serve(streaming_app(pieces))
        await until_ended(transport)
        return transport

    transport = uvloop.run(main())
    framed = len(b"1000\r\n") + len(PIECE) + 2
    assert len(transport.calls) >= 3  # at the limit twice, then the rest with the end
    assert all(len(call) <= CORK_LIMIT + framed + 200 for call in transport.calls), [len(c) for c in transport.calls]
    assert transport.body == PIECE * pieces
