"""Tests of StreamReader (server/web/streams.py), the request body as an asyncio stream.

Each test is a plain function running one coroutine with ``asyncio.run``; a reader that
must wait gets its data from callbacks scheduled on the loop (``call_soon``), so no test
sleeps and every wait is bounded by ``asyncio.wait_for``.
"""

import asyncio

import pytest

from server.web.streams import StreamReader

# --- helpers ---------------------------------------------------------------------------

TIMEOUT = 2.0  # bound on any wait; nothing here should take more than a few loop turns


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def fed(*pieces, eof=True, **kwargs) -> StreamReader:
    """A reader (on the running loop) fed ``pieces``: bytes, or (bytes, end_of_chunk)."""
    reader = StreamReader(**kwargs)
    for piece in pieces:
        data, end = piece if isinstance(piece, tuple) else (piece, False)
        reader.feed_data(data, end)
    if eof:
        reader.feed_eof()
    return reader


def feed_later(reader: StreamReader, *pieces, eof=True) -> None:
    """Feed ``pieces`` one per loop turn after the caller starts waiting, then EOF."""
    loop = asyncio.get_running_loop()

    def step(rest):
        if rest:
            data, end = rest[0] if isinstance(rest[0], tuple) else (rest[0], False)
            reader.feed_data(data, end)
            loop.call_soon(step, rest[1:])
        elif eof:
            reader.feed_eof()

    loop.call_soon(step, list(pieces))


async def loop_turn() -> None:
    """Let every callback and task that is ready run once (e.g. a reader reach its wait)."""
    loop = asyncio.get_running_loop()
    turned = loop.create_future()
    loop.call_soon(turned.set_result, None)
    await turned


async def collect(aiterable) -> list:
    return [item async for item in aiterable]


class Flow:
    """Records the flow-control calls a reader makes."""

    def __init__(self):
        self.calls = []

    def pause_reading(self):
        self.calls.append("pause")

    def resume_reading(self):
        self.calls.append("resume")


# --- read ----------------------------------------------------------------------------------

def test_read_all():
    async def main():
        return await fed(b"ab", b"cd", b"ef").read()
    assert run(main()) == b"abcdef"


def test_read_all_waits_for_eof():
    async def main():
        reader = fed(eof=False)
        feed_later(reader, b"ab", b"cd", b"ef")
        return await reader.read(-1)
    assert run(main()) == b"abcdef"


@pytest.mark.parametrize("call, expected", [
    (lambda r: r.read(), b"abcd\n"),
    (lambda r: r.readany(), b"abcd\n"),
    (lambda r: r.readexactly(5), b"abcd\n"),
    (lambda r: r.readline(), b"abcd\n"),
], ids=["read", "readany", "readexactly", "readline"])
def test_empty_feed_does_not_end_a_waiting_read(call, expected):
    """feed_data(b"", end_of_chunk=True) marks a chunk end: a waiting reader must keep waiting."""
    async def main():
        reader = fed(eof=False)
        feed_later(reader, (b"", True), b"abcd\n")
        return await call(reader)
    assert run(main()) == expected


def test_read_n():
    async def main():
        reader = fed(b"hello", b" world")
        return [await reader.read(2), await reader.read(5), await reader.read(100), await reader.read(3),
                await reader.read(0)]
    # read(n) returns at most n buffered bytes (across fed pieces), without waiting for more
    assert run(main()) == [b"he", b"llo w", b"orld", b"", b""]


def test_read_n_waits_for_data():
    async def main():
        reader = fed(eof=False)
        feed_later(reader, b"abc", eof=False)
        return await reader.read(10)
    assert run(main()) == b"abc"


def test_readany():
    async def main():
        reader = fed(b"ab", b"cd", eof=False)
        first = await reader.readany()
        feed_later(reader, b"ef")
        return [first, await reader.readany(), await reader.readany()]
    assert run(main()) == [b"abcd", b"ef", b""]


def test_readexactly():
    async def main():
        reader = fed(eof=False)
        feed_later(reader, b"a", b"bc", b"def")
        return [await reader.readexactly(2), await reader.readexactly(3), await reader.readexactly(0)]
    assert run(main()) == [b"ab", b"cde", b""]


def test_readexactly_short():
    async def main():
        reader = fed(b"ab", b"c")
        with pytest.raises(asyncio.IncompleteReadError) as err:
            await reader.readexactly(5)
        return err.value.partial, err.value.expected, reader.at_eof()
    assert run(main()) == (b"abc", 5, True)


# --- lines ------------------------------------------------------------------------------------

def test_readline():
    async def main():
        reader = fed(b"one\ntw", b"o\n", b"\nthree")
        return [await reader.readline() for _ in range(5)]
    assert run(main()) == [b"one\n", b"two\n", b"\n", b"three", b""]


def test_readline_waits_for_the_end_of_the_line():
    async def main():
        reader = fed(eof=False)
        feed_later(reader, b"ab", b"c", b"d\nrest")
        return await reader.readline(), await reader.read()
    assert run(main()) == (b"abcd\n", b"rest")


@pytest.mark.parametrize("pieces", [
    [b"ab\r\ncd"], [b"ab\r", b"\ncd"], [b"a", b"b", b"\r", b"\n", b"c", b"d"], [b"ab\r", b"x\r\ncd"],
], ids=["whole", "separator_split", "bytewise", "lone_cr_first"])
def test_readuntil_multibyte_separator(pieces):
    async def main():
        reader = fed(*pieces)
        return await reader.readuntil(b"\r\n"), await reader.read()
    first, rest = run(main())
    assert first + rest == b"".join(pieces)
    assert first.endswith(b"\r\n") and first.count(b"\r\n") == 1


def test_async_for_lines():
    async def main():
        reader = fed(eof=False)
        feed_later(reader, b"a\nb", b"\n", b"c")
        return await collect(reader)
    assert run(main()) == [b"a\n", b"b\n", b"c"]


# --- chunks ----------------------------------------------------------------------------------

def test_readchunk_several_chunks():
    async def main():
        reader = fed((b"abc", True), (b"de", True), (b"f", True))
        return [await reader.readchunk() for _ in range(4)]
    assert run(main()) == [(b"abc", True), (b"de", True), (b"f", True), (b"", False)]


def test_readchunk_chunk_split_over_feeds():
    async def main():
        reader = fed(eof=False)
        results = []
        for piece in [(b"ab", False), (b"c", True), (b"de", False), (b"f", True)]:
            reader.feed_data(*piece)
            results.append(await reader.readchunk())
        reader.feed_eof()
        results.append(await reader.readchunk())
        return results
    assert run(main()) == [(b"ab", False), (b"c", True), (b"de", False), (b"f", True), (b"", False)]


def test_readchunk_buffered_pieces_of_one_chunk_come_together():
    async def main():
        reader = fed((b"ab", False), (b"cd", False), (b"e", True), (b"fg", False))
        return [await reader.readchunk() for _ in range(3)]
    assert run(main()) == [(b"abcde", True), (b"fg", False), (b"", False)]


def test_readchunk_waits():
    async def main():
        reader = fed(eof=False)
        feed_later(reader, (b"abc", True), (b"de", True))
        return [await reader.readchunk() for _ in range(3)]
    assert run(main()) == [(b"abc", True), (b"de", True), (b"", False)]


def test_readchunk_non_chunked():
    async def main():
        reader = fed(b"abc", b"def")
        return [await reader.readchunk(), await reader.readchunk()]
    assert run(main()) == [(b"abcdef", False), (b"", False)]


def test_readchunk_after_partial_reads():
    async def main():
        reader = fed((b"abcdef", True), (b"gh", True))
        return [await reader.read(2), await reader.readchunk(), await reader.readchunk()]
    assert run(main()) == [b"ab", (b"cdef", True), (b"gh", True)]


def test_readchunk_boundary_already_read():
    async def main():
        reader = fed((b"abc", True), (b"de", True))
        return [await reader.read(3), await reader.readchunk(), await reader.readchunk()]
    # the first chunk was consumed by read(): its end is still reported, with no data
    assert run(main()) == [b"abc", (b"", True), (b"de", True)]


def test_iter_chunks():
    async def main():
        reader = fed(eof=False)
        chunks = reader.iter_chunks()
        got = []
        for piece in [(b"abc", True), (b"d", False), (b"e", True)]:
            reader.feed_data(*piece)
            got.append(await chunks.__anext__())
        reader.feed_eof()
        with pytest.raises(StopAsyncIteration):
            await chunks.__anext__()
        return got
    assert run(main()) == [(b"abc", True), (b"d", False), (b"e", True)]


def test_iter_chunks_all_buffered():
    async def main():
        return await collect(fed((b"abc", True), (b"d", False), (b"e", True), b"tail").iter_chunks())
    assert run(main()) == [(b"abc", True), (b"de", True), (b"tail", False)]


def test_iter_chunked():
    async def main():
        return await collect(fed(b"abcd", b"efg").iter_chunked(3))
    assert run(main()) == [b"abc", b"def", b"g"]


def test_iter_any():
    async def main():
        reader = fed(b"ab", b"cd", eof=False)
        feed_later(reader, b"ef")
        return await collect(reader.iter_any())
    assert run(main()) == [b"abcd", b"ef"]


# --- state, exceptions, EOF --------------------------------------------------------------------

def test_eof_flags():
    async def main():
        reader = fed(eof=False)
        states = [(reader.is_eof(), reader.at_eof())]
        reader.feed_data(b"ab")
        reader.feed_eof()
        states.append((reader.is_eof(), reader.at_eof()))
        await reader.read(1)
        states.append((reader.is_eof(), reader.at_eof()))
        await reader.read(1)
        states.append((reader.is_eof(), reader.at_eof()))
        return states
    assert run(main()) == [(False, False), (True, False), (True, False), (True, True)]


def test_set_exception_reaches_a_waiting_reader():
    async def main():
        reader = fed(eof=False)
        task = asyncio.ensure_future(reader.read())
        await loop_turn()  # the reader is now waiting
        exc = ConnectionResetError("gone")
        reader.set_exception(exc)
        with pytest.raises(ConnectionResetError) as err:
            await task
        return err.value is exc, reader.exception() is exc
    assert run(main()) == (True, True)


@pytest.mark.parametrize("call", [
    lambda r: r.read(), lambda r: r.read(1), lambda r: r.readany(), lambda r: r.readexactly(1),
    lambda r: r.readline(), lambda r: r.readchunk(),
], ids=["read", "read_n", "readany", "readexactly", "readline", "readchunk"])
def test_set_exception_before_reading(call):
    async def main():
        reader = fed((b"buffered", True), eof=False)
        assert reader.exception() is None
        reader.set_exception(ValueError("bad body"))
        with pytest.raises(ValueError):
            await call(reader)
        with pytest.raises(ValueError):
            reader.read_nowait()
    run(main())


def test_set_exception_reaches_wait_eof():
    async def main():
        reader = fed(eof=False)
        task = asyncio.ensure_future(reader.wait_eof())
        await loop_turn()
        reader.set_exception(ValueError("bad body"))
        with pytest.raises(ValueError):
            await task
    run(main())


def test_wait_eof():
    async def main():
        reader = fed(b"unread", eof=False)
        task = asyncio.ensure_future(reader.wait_eof())
        await loop_turn()
        assert not task.done()
        reader.feed_eof()
        await task
        await reader.wait_eof()  # already at EOF: returns at once
        return reader.is_eof(), reader.at_eof(), await reader.read()
    assert run(main()) == (True, False, b"unread")


def test_read_nowait():
    async def main():
        reader = fed(b"abc", b"def", eof=False)
        return [reader.read_nowait(2), reader.read_nowait(2), reader.read_nowait(), reader.read_nowait()]
    assert run(main()) == [b"ab", b"cd", b"ef", b""]


def test_read_nowait_while_a_reader_waits():
    async def main():
        reader = fed(eof=False)
        task = asyncio.ensure_future(reader.read())
        await loop_turn()
        with pytest.raises(RuntimeError):
            reader.read_nowait()
        with pytest.raises(RuntimeError):
            await reader.readany()  # a second waiter is refused too
        reader.feed_eof()
        return await task
    assert run(main()) == b""


def test_unread_data():
    async def main():
        reader = fed(b"abcdef", b"gh")
        first = await reader.read(3)
        reader.unread_data(first)
        again = await reader.read(4)
        reader.unread_data(b"XY")  # in the middle of a buffered piece
        reader.unread_data(b"")
        return first, again, await reader.read()
    assert run(main()) == (b"abc", b"abcd", b"XYefgh")


def test_on_first_read_not_called_by_feeding():
    calls = []

    async def main():
        reader = fed(b"ab", (b"c", True), on_first_read=lambda: calls.append(1))
        reader.feed_data(b"more")
        return reader.is_eof()
    assert run(main()) is True and calls == []


READS = {
    "read": lambda r: r.read(),
    "read_n": lambda r: r.read(1),
    "readany": lambda r: r.readany(),
    "readexactly": lambda r: r.readexactly(1),
    "readline": lambda r: r.readline(),
    "readuntil": lambda r: r.readuntil(b"c"),
    "readchunk": lambda r: r.readchunk(),
    "read_nowait": lambda r: _ready(r.read_nowait(1)),
}


async def _ready(value):
    return value


@pytest.mark.parametrize("first", READS.values(), ids=READS.keys())
@pytest.mark.parametrize("pieces", [[(b"abc", True), (b"def", True)], [b"abc", b"def"]],
                         ids=["chunked", "plain"])
def test_on_first_read_called_once_on_the_first_read(first, pieces):
    calls = []

    async def main():
        reader = fed(*pieces, on_first_read=lambda: calls.append(1))
        await first(reader)
        assert calls == [1], "not called on the first read"
        await reader.read(1)
        await reader.readchunk()
        reader.read_nowait()
        await reader.read()
    run(main())
    assert calls == [1]


def test_on_first_read_called_before_waiting():
    """The lazy 100 Continue must go out before the reader waits for a body the client holds back."""
    calls = []

    async def main():
        reader = fed(eof=False, on_first_read=lambda: calls.append(1))
        task = asyncio.ensure_future(reader.read())
        await loop_turn()
        assert calls == [1] and not task.done()
        reader.feed_data(b"body")
        reader.feed_eof()
        return await task
    assert run(main()) == b"body" and calls == [1]


# --- flow control ---------------------------------------------------------------------------

def test_pause_once_above_high_water():
    async def main():
        flow = Flow()
        reader = fed(eof=False, flow=flow, high_water=8)
        reader.feed_data(b"x" * 8)
        at_mark = list(flow.calls)
        reader.feed_data(b"x")
        reader.feed_data(b"x" * 100)
        return at_mark, flow.calls
    assert run(main()) == ([], ["pause"])


def test_resume_once_below_low_water():
    async def main():
        flow = Flow()
        reader = fed(b"x" * 12, eof=False, flow=flow, high_water=8)  # low water: 4
        await reader.read(8)  # 4 left: not below the low-water mark
        before = list(flow.calls)
        await reader.read(1)  # 3 left
        await reader.read(1)
        return before, flow.calls
    assert run(main()) == (["pause"], ["pause", "resume"])


def test_pause_again_after_resume():
    async def main():
        flow = Flow()
        reader = fed(b"x" * 9, eof=False, flow=flow, high_water=8)
        reader.read_nowait()
        reader.feed_data(b"y" * 9)
        return flow.calls
    assert run(main()) == ["pause", "resume", "pause"]


def test_flow_none_is_fine():
    async def main():
        reader = fed(b"x" * 100, high_water=8)
        return len(await reader.read())
    assert run(main()) == 100
