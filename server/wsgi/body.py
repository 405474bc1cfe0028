"""Request bodies for WSGI apps: two body sinks, one per mode.

* ``SpooledBody`` (default, ``readpayload`` on): the loop receives the whole body
  before the app is called. Up to a threshold it stays in memory as the pieces it
  came in (``MemoryInput``: no copy into one buffer, and a read of a whole piece
  returns that piece); past it, in a temporary file. A slow upload never holds an
  app thread, and the app reads a file object (``wsgi.input``) that never blocks
  on the network.
* ``BlockingInput`` (``readpayload`` off): the app is called as soon as the head
  arrives and reads the body as it comes. ``read()`` blocks the app thread until
  the loop has fed enough; the loop pauses the transport while more than
  ``high_water`` bytes wait unread, so memory stays bounded. The first read sends
  the lazy ``100 Continue``.

Both hold pieces shorter than ``SMALL_PIECE`` (tiny chunks) in one bytearray, so
their bounds hold in bytes of memory whatever the chunking (``server.protocol.pieces``).
"""

import collections
import io
import tempfile
import threading

from server.protocol.pieces import SMALL_PIECE, SmallPieces


class SpooledBody:
    """Sink that collects a body, then calls ``on_complete(wsgi_input, size)`` on the loop:
    up to ``threshold`` bytes in memory, past it in a temporary file (0: always a file)."""

    def __init__(self, threshold: int, tmp_dir: str | None, on_complete):
        self._threshold = threshold
        self._tmp_dir = tmp_dir
        self._on_complete = on_complete
        self._pieces: list[bytes] = []
        self._small = SmallPieces()  # small pieces after the first, not sealed yet
        self._file = None  # the temporary file, once past the threshold
        self._size = 0

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        size = self._size = self._size + len(data)
        if self._file is not None:
            self._file.write(data)
        elif size > self._threshold:
            self._spill(data)
        elif len(data) < SMALL_PIECE and size > len(data):  # (a small body alone is kept as it came)
            self._small.add(data)
        else:
            self._seal_small()
            self._pieces.append(data)

    def feed_eof(self, trailers=None) -> None:
        if self._file is not None:
            body, self._file = self._file, None
            body.seek(0)
        else:
            self._seal_small()
            body = MemoryInput(self._pieces)
        on_complete, self._on_complete = self._on_complete, None
        on_complete(body, self._size)

    def set_exception(self, exc: BaseException) -> bool:
        """The body will never be complete: drop it; the app never saw it."""
        if self._file is not None:
            self._file.close()
        self._pieces = []
        return False

    def _seal_small(self) -> None:
        if self._small:
            self._pieces.append(self._small.seal())

    def _spill(self, data: bytes) -> None:
        """Past the threshold: what is held, and all that follows, goes to a temporary file."""
        self._seal_small()
        file = self._file = tempfile.TemporaryFile(dir=self._tmp_dir)
        file.writelines(self._pieces)
        file.write(data)
        self._pieces = []


class PieceReader:
    """A file object's reads (``read``, ``readinto``, ``readline``, ``readlines``, iteration)
    over ``_take(most, until)``, which returns the next bytes of one piece, b"" at the end."""

    def _take(self, most: int, until: bytes | None = None) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 62
        elif size == 0:
            return b""
        first = self._take(size)
        if len(first) == size or not first:
            return first  # (one piece's bytes, not copied again)
        parts = [first]
        size -= len(first)
        while size > 0:
            piece = self._take(size)
            if not piece:
                break
            parts.append(piece)
            size -= len(piece)
        return b"".join(parts)

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            piece = self._take(len(view) - filled)
            if not piece:
                break
            view[filled:filled + len(piece)] = piece
            filled += len(piece)
        return filled

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


def _piece_end(piece: bytes, start: int, most: int, until: bytes | None) -> int:
    """Where a read of at most ``most`` bytes of ``piece`` from ``start`` ends (after ``until``
    if it comes first)."""
    end = min(start + most, len(piece))
    if until is not None:
        pos = piece.find(until, start, end)
        if pos >= 0:
            return pos + len(until)
    return end


class MemoryInput(PieceReader):
    """A whole body in memory, read from the pieces it came in by one app thread (no lock);
    seekable, as the temporary file of a larger body is."""

    def __init__(self, pieces: list[bytes]):
        self._pieces = pieces
        self._index = 0  # the piece the next read starts in
        self._offset = 0  # bytes of that piece already read

    def _take(self, most: int, until: bytes | None = None) -> bytes:
        pieces = self._pieces
        index = self._index
        if index >= len(pieces):
            return b""
        piece, start = pieces[index], self._offset
        end = _piece_end(piece, start, most, until)
        if end == len(piece):
            self._index, self._offset = index + 1, 0
            return piece[start:] if start else piece
        self._offset = end
        return piece[start:end]

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return sum(map(len, self._pieces[:self._index])) + self._offset

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        size = sum(map(len, self._pieces))
        position = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: size}[whence] + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._index, self._offset = 0, min(position, size)
        pieces = self._pieces
        while self._index < len(pieces) and self._offset >= len(pieces[self._index]):
            self._offset -= len(pieces[self._index])
            self._index += 1
        return position

    def close(self) -> None:
        self._pieces = []
        self._index = self._offset = 0


class EmptyInput(PieceReader):
    """The ``wsgi.input`` of a request without a body: at its end, seekable as a body's
    ``MemoryInput``. It has no state, so one serves every request of every thread
    (``EMPTY_INPUT``): a new one per request cost a call and an object (1.5k instructions,
    2% of a hello request)."""

    def _take(self, most: int, until: bytes | None = None) -> bytes:
        return b""

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR, io.SEEK_END):
            raise ValueError(f"invalid whence ({whence})")
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        return offset

    def close(self) -> None:
        pass


EMPTY_INPUT = EmptyInput()


class InputClosed(IOError):
    """The request body cannot be read any further (client gone, timeout, bad framing)."""


class BlockingInput(PieceReader):
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

    # -- app thread side (the reads: PieceReader) -----------------------------

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
            end = _piece_end(head, start, most, until)
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
