"""Request bodies for WSGI apps: two body sinks, one per mode.

* ``SpooledBody`` (default, ``readpayload`` on): the loop receives the whole body
  before the app is called: in memory up to a threshold, then in a temporary
  file. A slow upload never holds an app thread, and the app reads a plain
  file object (``wsgi.input``) that never blocks on the network.
* ``BlockingInput`` (``readpayload`` off): the app is called as soon as the head
  arrives and reads the body as it comes. ``read()`` blocks the app thread until
  the loop has fed enough; the loop pauses the transport while more than
  ``high_water`` bytes wait unread, so memory stays bounded. The first read sends
  the lazy ``100 Continue``. Pieces shorter than ``SMALL_PIECE`` (tiny chunks) share
  one bytearray, so the mark holds in bytes of memory whatever the chunking
  (``server.protocol.pieces``).
"""

import collections
import io
import tempfile
import threading

from server.protocol.pieces import SMALL_PIECE, SmallPieces


class SpooledBody:
    """Sink that collects a body, then calls ``on_complete(file, size)`` on the loop."""

    def __init__(self, threshold: int, tmp_dir: str | None, on_complete):
        self._file = tempfile.SpooledTemporaryFile(max_size=threshold, dir=tmp_dir)
        self._size = 0
        self._on_complete = on_complete

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        self._file.write(data)
        self._size += len(data)

    def feed_eof(self, trailers=None) -> None:
        self._file.seek(0)
        on_complete, self._on_complete = self._on_complete, None
        on_complete(self._file, self._size)

    def set_exception(self, exc: BaseException) -> bool:
        """The body will never be complete: drop it; the app never saw it."""
        self._file.close()
        return False


def empty_input() -> io.BytesIO:
    return io.BytesIO(b"")


class InputClosed(IOError):
    """The request body cannot be read any further (client gone, timeout, bad framing)."""


class BlockingInput:
    """``wsgi.input`` fed by the loop, read by an app thread."""

    def __init__(self, protocol, pool, high_water: int = 256 * 1024):
        self._protocol = protocol
        self._pool = pool
        self._high_water = high_water
        self._low_water = high_water // 2
        self._cond = threading.Condition(threading.Lock())
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0  # bytes of _chunks[0] already read
        self._small = SmallPieces()  # small pieces fed after _chunks', not sealed yet
        self._size = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._paused = False  # loop side only
        self._asked_continue = False  # thread side only

    # -- loop side (sink) ---------------------------------------------------

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        with self._cond:
            if len(data) < SMALL_PIECE and self._size:  # (a small body alone is kept as it came)
                self._small.add(data)
            else:
                if self._small:
                    self._chunks.append(self._small.seal())
                self._chunks.append(data)
            self._size += len(data)
            over = self._size > self._high_water
            self._cond.notify()
        if over and not self._paused:
            self._paused = True
            self._protocol.pause_reading("wsgi.input")

    def feed_eof(self, trailers=None) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def set_exception(self, exc: BaseException) -> bool:
        with self._cond:
            self._exc = exc
            self._cond.notify_all()
        return True  # the app is running: it owns the response

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._protocol.resume_reading("wsgi.input")

    # -- app thread side ----------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while True:
                piece = self._take(1 << 30)
                if not piece:
                    return b"".join(parts)
                parts.append(piece)
        if size == 0:
            return b""
        parts = []
        while size > 0:
            piece = self._take(size)
            if not piece:
                break
            parts.append(piece)
            size -= len(piece)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else 1 << 62
        parts = []
        length = 0
        while length < limit:
            piece = self._take(limit - length, until=b"\n")
            if not piece:
                break
            parts.append(piece)
            length += len(piece)
            if piece.endswith(b"\n"):
                break
        return b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def _take(self, most: int, until: bytes | None = None) -> bytes:
        """Wait for data; return up to ``most`` bytes (to ``until`` included); b"" at the end."""
        if not self._asked_continue:
            self._asked_continue = True
            self._pool.call_in_loop(self._protocol.send_continue)
        with self._cond:
            while not self._chunks and not self._small and not self._eof and self._exc is None:
                self._cond.wait()
            if not self._chunks and self._small:
                self._chunks.append(self._small.seal())
            if self._exc is not None and not self._chunks:
                raise InputClosed(str(self._exc)) from self._exc
            if not self._chunks:
                return b""
            head, start = self._chunks[0], self._offset
            end = min(start + most, len(head))
            if until is not None:
                pos = head.find(until, start, end)
                if pos >= 0:
                    end = pos + len(until)
            if end == len(head):
                self._chunks.popleft()
                self._offset = 0
            else:  # (an offset, not a copy of the rest: many short reads of a piece stay linear)
                self._offset = end
            piece = head[start:end] if start or end < len(head) else head
            self._size -= end - start
            resume = self._size < self._low_water
        if resume:
            self._pool.call_in_loop(self._resume)
        return piece
