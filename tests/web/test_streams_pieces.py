"""StreamReader (server/web/streams.py) fed many small pieces: its high-water mark holds in
bytes of memory (small pieces share one buffer, a chunk boundary counts its 8 bytes), and
what the handler reads is unchanged: the bytes in order, every chunk boundary reported."""

import asyncio

from server.protocol.pieces import SMALL_PIECE
from server.web.streams import BOUNDARY_COST, StreamReader


class Flow:
    def __init__(self):
        self.calls = []

    def pause_reading(self):
        self.calls.append("pause")

    def resume_reading(self):
        self.calls.append("resume")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


def test_one_byte_chunks_come_back_one_by_one_with_their_boundaries():
    async def main():
        reader = StreamReader()
        for i in range(3000):
            reader.feed_data(b"%d" % (i % 10), True)
        reader.feed_data(b"tail")
        reader.feed_eof()
        return [await reader.readchunk() for _ in range(3002)]
    got = run(main())
    assert got[:3000] == [(b"%d" % (i % 10), True) for i in range(3000)]
    assert got[3000:] == [(b"tail", False), (b"", False)]


def test_small_and_large_pieces_keep_their_order():
    large = b"L" * SMALL_PIECE

    async def main():
        reader = StreamReader()
        for piece in (b"ab", large, b"cd", b"ef", large, b"g"):
            reader.feed_data(piece)
        reader.feed_eof()
        first = await reader.read(3)
        return first + await reader.read()
    assert run(main()) == b"ab" + large + b"cdef" + large + b"g"


def test_the_mark_counts_chunk_boundaries():
    """1-byte chunks cost 1 + 8 bytes each: reading pauses after about high_water / 9 of them
    (counting payload alone, it would take high_water of them)."""
    flow = Flow()

    async def main():
        reader = StreamReader(flow, high_water=4096)
        fed = 0
        while not flow.calls:
            reader.feed_data(b"x", True)
            fed += 1
        return fed
    fed = run(main())
    assert flow.calls == ["pause"]
    assert fed == 4096 // (1 + BOUNDARY_COST) + 1


def test_boundaries_a_plain_read_went_past_are_dropped():
    """A handler that only calls read() never takes the boundaries: they must not pile up
    (reading resumes once the bytes are read), while the one at the read position is still
    reported to a later readchunk()."""
    flow = Flow()

    async def main():
        reader = StreamReader(flow, high_water=4096)
        for _ in range(500):
            reader.feed_data(b"x", True)
        assert flow.calls == ["pause"]
        data = await reader.read(500)
        reader.feed_data(b"yz", True)
        reader.feed_eof()
        return data, [await reader.readchunk() for _ in range(3)]
    data, chunks = run(main())
    assert data == b"x" * 500
    assert flow.calls == ["pause", "resume"]
    assert chunks == [(b"", True), (b"yz", True), (b"", False)]
