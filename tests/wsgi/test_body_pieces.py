"""The streamed ``wsgi.input`` (server/wsgi/body.py ``BlockingInput``) and the ASGI request
body (server/asgi/body.py ``RequestBody``) fed small and large pieces: small pieces share
one buffer, and what the app reads is the same bytes in the same order, by any read."""

import asyncio

import pytest

from server.asgi.body import RequestBody
from server.protocol.pieces import SMALL_PIECE
from server.wsgi.body import BlockingInput

LARGE = b"L" * (SMALL_PIECE + 3)
PIECES = [b"a", b"b\n", LARGE, b"c", b"\n", b"d" * 10, LARGE + b"\n", b"e"] + [b"\n"] * 2000 + [b"end"]
BODY = b"".join(PIECES)


class Channel:
    """Records the flow-control calls; the loop side of the pool runs at once."""

    def __init__(self):
        self.calls = []
        self.loop = None

    def pause_reading(self, reason):
        self.calls.append("pause")

    def resume_reading(self, reason):
        self.calls.append("resume")

    def send_continue(self):
        pass

    def call_in_loop(self, fn, *args):
        fn(*args)


def fed_input(high_water: int = 256 * 1024) -> tuple[BlockingInput, Channel]:
    channel = Channel()
    stream = BlockingInput(channel, channel, high_water)
    for piece in PIECES:
        stream.feed_data(piece)
    stream.feed_eof()
    return stream, channel


@pytest.mark.parametrize("read", [
    lambda s: s.read(),
    lambda s: b"".join(iter(lambda: s.read(7), b"")),
    lambda s: b"".join(s.readlines()),
    lambda s: b"".join(iter(lambda: s.readline(5), b"")),
], ids=["read", "read_7", "readlines", "readline_5"])
def test_wsgi_input_reads_the_pieces_in_order(read):
    stream, _ = fed_input()
    assert read(stream) == BODY


def test_wsgi_input_lines_of_tiny_pieces():
    stream, _ = fed_input()
    lines = stream.readlines()
    assert lines[:2] == [b"ab\n", LARGE + b"c\n"]
    assert len(lines) == BODY.count(b"\n") + 1 and lines[-1] == b"end"


def test_wsgi_input_pauses_past_its_mark_and_resumes_when_read():
    stream, channel = fed_input(high_water=2048)
    assert channel.calls == ["pause"]
    assert stream.read() == BODY
    assert channel.calls == ["pause", "resume"]


def test_asgi_body_hands_over_the_pieces_in_order():
    async def main():
        channel = Channel()
        channel.loop = asyncio.get_running_loop()
        body = RequestBody(channel, True, lambda exc: False)
        for piece in PIECES[:5]:
            body.feed_data(piece)
        first = await body.receive()
        for piece in PIECES[5:]:
            body.feed_data(piece)
        body.feed_eof()
        return first, await body.receive()
    first, second = asyncio.run(main())
    assert first["more_body"] and not second["more_body"]
    assert first["body"] + second["body"] == BODY
    assert type(first["body"]) is bytes and type(second["body"]) is bytes
