"""StreamReader: a request body as an asyncio stream, with flow control.

    parser ──Data──► ServerHttpProtocol ──feed_data()──► StreamReader ──read*()──► handler

The protocol feeds bytes as the parser yields them; the handler reads. When more
than ``high_water`` bytes are waiting, the reader asks its flow-control object to
pause the transport, and resumes it when the handler has taken the buffer below
``low_water``: a client uploading faster than the handler reads never grows
memory past the mark.

Chunk boundaries of a chunked upload are remembered so that ``readchunk()`` can
report them (``end_of_http_chunk``). ``on_first_read`` lets the server send a
lazy ``100 Continue``: only when the handler first asks for the body.

The mark holds in bytes of memory whatever the client's chunking: pieces
shorter than ``SMALL_PIECE`` share one bytearray until the handler reads
(``server.protocol.pieces``), a boundary is 8 bytes of an array and counts as
such against the mark, and boundaries a plain ``read()`` went past are dropped.
"""

import asyncio
import bisect
import collections
from array import array
from typing import Callable

from server.protocol.pieces import SMALL_PIECE, SmallPieces
from server.protocol.wakeup import Wakeable

DEFAULT_HIGH_WATER = 256 * 1024
BOUNDARY_COST = 8  # bytes a remembered chunk boundary holds (one array item)


class StreamReader(Wakeable):
    def __init__(
        self,
        flow=None,
        *,
        high_water: int = DEFAULT_HIGH_WATER,
        loop: asyncio.AbstractEventLoop | None = None,
        on_first_read: Callable[[], None] | None = None,
    ):
        self._flow = flow  # has pause_reading() / resume_reading(), or None
        self._high_water = high_water
        self._low_water = high_water // 2
        self._loop = loop or asyncio.get_event_loop()
        self._on_first_read = on_first_read
        self._buffer: collections.deque[bytes] = collections.deque()
        self._small: SmallPieces | None = None  # small pieces fed after _buffer's, not sealed yet
        self._size = 0  # bytes in _buffer (past _offset) and _small
        self._offset = 0  # bytes of _buffer[0] already consumed
        self._total_fed = 0
        self._total_read = 0
        # Chunk ends (in _total_fed units) from _chunk_ends[_ends_head] on; the ones before are spent.
        self._chunk_ends = array("q")
        self._ends_head = 0
        self._eof = False
        self._eof_waiter: asyncio.Future | None = None
        self._exception: BaseException | None = None
        self._paused = False
        self.trailers = None

    def __repr__(self) -> str:
        state = " eof" if self._eof else ""
        return f"<StreamReader {self._size} bytes{state}>"

    # -- feeding side (the protocol) --------------------------------------

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        n = len(data)
        if n >= SMALL_PIECE or not self._size:  # (a small body alone is kept as it came)
            if self._small:
                self._seal()
            if n:
                self._buffer.append(data)
        else:
            small = self._small
            if small is None:
                small = self._small = SmallPieces()
            small.add(data)
        self._size += n
        self._total_fed += n
        if end_of_chunk:
            self._chunk_ends.append(self._total_fed)
        self._wake()
        if not self._paused and self._flow is not None and self._cost() > self._high_water:
            self._paused = True
            self._flow.pause_reading()

    def feed_eof(self, trailers=None) -> None:
        self._eof = True
        self.trailers = trailers
        self._wake()
        if self._eof_waiter is not None and not self._eof_waiter.done():
            self._eof_waiter.set_result(None)

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc
        for fut in (self._waiter, self._eof_waiter):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        self._waiter = None

    def exception(self) -> BaseException | None:
        return self._exception

    def is_eof(self) -> bool:
        """The whole body has been received (maybe not read yet)."""
        return self._eof

    def at_eof(self) -> bool:
        """The whole body has been received and read."""
        return self._eof and self._size == 0

    async def wait_eof(self) -> None:
        if self._eof:
            return
        self._eof_waiter = self._loop.create_future()
        try:
            await self._eof_waiter
        finally:
            self._eof_waiter = None

    def unread_data(self, data: bytes) -> None:
        """Put bytes back at the front of the stream."""
        if not data:
            return
        if self._offset:
            self._buffer[0] = self._buffer[0][self._offset :]
            self._offset = 0
        self._buffer.appendleft(data)
        self._size += len(data)
        self._total_read -= len(data)
        self._wake()

    # -- reading side (the handler) ---------------------------------------

    async def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if n < 0:
            parts = []
            while True:
                await self._wait_for_data("read")
                if not self._size:
                    return b"".join(parts)
                parts.append(self._take(self._size))
        await self._wait_for_data("read")
        return self._take(min(n, self._size))

    async def readany(self) -> bytes:
        await self._wait_for_data("readany")
        return self._take(self._size)

    async def readexactly(self, n: int) -> bytes:
        parts = []
        needed = n
        while needed:
            await self._wait_for_data("readexactly")
            if not self._size:
                partial = b"".join(parts)
                raise asyncio.IncompleteReadError(partial, n)
            piece = self._take(min(needed, self._size))
            parts.append(piece)
            needed -= len(piece)
        return b"".join(parts)

    async def readline(self) -> bytes:
        return await self.readuntil(b"\n")

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Bytes up to and including ``separator`` (or to the end of the body)."""
        parts = []
        length = 0
        while True:
            await self._wait_for_data("readuntil")
            if not self._size:
                return b"".join(parts)
            head = self._buffer[0]
            pos = head.find(separator, self._offset)
            if pos >= 0:
                piece = self._take(pos + len(separator) - self._offset)
                parts.append(piece)
                return b"".join(parts)
            piece = self._take(len(head) - self._offset)
            parts.append(piece)
            length += len(piece)
            if length > self._high_water:
                raise ValueError("Line is too long")
            if len(separator) > 1:  # a separator may straddle two pieces
                joined = b"".join(parts)
                parts = [joined]
                idx = joined.find(separator)
                if idx >= 0:
                    self.unread_data(joined[idx + len(separator) :])
                    return joined[: idx + len(separator)]

    async def readchunk(self) -> tuple[bytes, bool]:
        """Return ``(data, end_of_http_chunk)``; ``(b"", False)`` at the end of the body."""
        while True:
            self._check("readchunk")
            ends = self._chunk_ends
            if self._ends_head < len(ends):  # (a plain read() drops the boundaries it went past)
                gap = ends[self._ends_head] - self._total_read
                if gap <= self._size:
                    data = self._take(gap)
                    self._spend_boundary()
                    return data, True
            if self._size:
                return self._take(self._size), False
            if self._eof:
                return b"", False
            await self._sleep(self._loop)

    def read_nowait(self, n: int = -1) -> bytes:
        self._check("read_nowait")
        if n < 0 or n > self._size:
            n = self._size
        return self._take(n)

    # -- iteration --------------------------------------------------------

    def __aiter__(self):
        return ReadIterator(self.readline)

    def iter_chunked(self, n: int):
        return ReadIterator(lambda: self.read(n))

    def iter_any(self):
        return ReadIterator(self.readany)

    def iter_chunks(self):
        return ReadIterator(self.readchunk, (b"", False))

    # -- internals --------------------------------------------------------

    def _first_read(self) -> None:
        if self._on_first_read is not None:
            callback, self._on_first_read = self._on_first_read, None
            callback()

    async def _wait_for_data(self, func_name: str) -> None:
        """Return when bytes are buffered or the body has ended; raise a fed exception."""
        while True:
            self._check(func_name)
            if self._size or self._eof:
                return
            await self._sleep(self._loop)

    def _check(self, func_name: str) -> None:
        if self._exception is not None:
            raise self._exception
        if self._waiter is not None:
            raise RuntimeError(f"{func_name}() called while another coroutine is waiting for data")
        self._first_read()
        if self._small:  # every read starts here: the deque then holds all the bytes
            self._seal()

    def _seal(self) -> None:
        self._buffer.append(self._small.seal())

    def _cost(self) -> int:
        """Bytes held for the handler: the body bytes and the chunk boundaries."""
        return self._size + BOUNDARY_COST * (len(self._chunk_ends) - self._ends_head)

    def _spend_boundary(self) -> None:
        self._spend_boundaries(self._ends_head + 1)

    def _drop_passed_boundaries(self) -> None:
        """Boundaries before what was read are never reported (the one at it still is)."""
        self._spend_boundaries(bisect.bisect_left(self._chunk_ends, self._total_read, self._ends_head))

    def _spend_boundaries(self, head: int) -> None:
        """Boundaries before index ``head`` are spent; the array sheds them once they are half of it."""
        ends = self._chunk_ends
        if head == len(ends):
            del ends[:]
            head = 0
        elif head >= 1024 and head * 2 >= len(ends):
            del ends[:head]
            head = 0
        self._ends_head = head

    def _take(self, n: int) -> bytes:
        """Remove and return exactly n buffered bytes (n <= self._size)."""
        if n == 0:
            return b""
        parts = []
        needed = n
        buffer = self._buffer
        while needed:
            head = buffer[0]
            available = len(head) - self._offset
            if available <= needed:
                parts.append(head[self._offset :] if self._offset else head)
                buffer.popleft()
                self._offset = 0
                needed -= available
            else:
                parts.append(head[self._offset : self._offset + needed])
                self._offset += needed
                needed = 0
        self._size -= n
        self._total_read += n
        if self._ends_head < len(self._chunk_ends):
            self._drop_passed_boundaries()
        if self._paused and self._cost() < self._low_water:
            self._paused = False
            self._flow.resume_reading()
        return parts[0] if len(parts) == 1 else b"".join(parts)


class ReadIterator:
    """``async for`` over a reader: each step awaits ``_read_next()`` and the first
    result equal to ``_end`` ends the iteration.

    ``ReadIterator(read, end)`` iterates over a read method of a stream; a reader
    that is its own iterator (a multipart body, one of its parts) subclasses it
    and sets both as class attributes.
    """

    _end = b""

    def __init__(self, read_next, end=b""):
        self._read_next = read_next
        self._end = end

    def __aiter__(self):
        return self

    async def __anext__(self):
        item = await self._read_next()
        if item == self._end:
            raise StopAsyncIteration
        return item
