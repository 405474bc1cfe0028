"""Response spools: a response body held for a client that reads slower than the app writes.

    producer ──append(data)──► ResponseSpool: memory (up to ``memory_limit``) ──► temporary file
    loop     ◄──take(most)──── the oldest bytes first, exact and in order, as the pieces
                               they went in as (no join: the loop writes them with one writev)

A spool lets an app that produces its body on another thread (WSGI) finish as
fast as it produces, whatever the client's speed: the loop writes the spool out
as the transport takes it. Bytes are kept in memory up to ``memory_limit``, then
go to an anonymous temporary file (in ``tmp_dir`` when set), as waitress's
``OverflowableBuffer`` does. The spool itself takes no lock: its owner
serialises ``append`` and ``take`` (the WSGI exchange's condition).

``SpoolBudget`` bounds the bytes all the spools of a worker hold; its ``in_use``
is the worker's gauge of spooled bytes (``spooled_bytes()`` sums every budget of
the process).
"""

import collections
import os
import tempfile
import threading
import weakref

PIECES_PER_TAKE = 64  # pieces taken as they are; more are joined (a writev of a few buffers, not thousands)

_budgets: "weakref.WeakSet[SpoolBudget]" = weakref.WeakSet()


def spooled_bytes() -> int:
    """Bytes held by the response spools of this process (every worker budget's ``in_use``)."""
    return sum(budget.in_use for budget in list(_budgets))


class SpoolBudget:
    """The bytes the response spools of one worker may hold together (callable from any thread)."""

    __slots__ = ("limit", "in_use", "_lock", "__weakref__")

    def __init__(self, limit: int):
        self.limit = limit
        self.in_use = 0  # bytes spooled now, over every response of the worker
        self._lock = threading.Lock()
        _budgets.add(self)

    def try_take(self, n: int) -> bool:
        """Count ``n`` more bytes if they fit under the limit."""
        with self._lock:
            if self.in_use + n > self.limit:
                return False
            self.in_use += n
            return True

    def take(self, n: int) -> None:
        """Count ``n`` more bytes, over the limit if need be (what goes without waiting anyway)."""
        if not n:
            return
        with self._lock:
            self.in_use += n

    def give_back(self, n: int) -> None:
        if n:
            with self._lock:
                self.in_use -= n


class ResponseSpool:
    """Bytes in order: in memory up to ``memory_limit``, the rest in a temporary file.

    Every byte in memory comes before every byte in the file: a piece goes to memory
    only while the file holds nothing unread. A piece given to an empty spool stays in
    memory whatever its size (the producer made it already; holding it costs nothing).
    """

    __slots__ = ("size", "_memory", "_in_memory", "_memory_limit", "_tmp_dir", "_file", "_read_at", "_write_at")

    def __init__(self, memory_limit: int, tmp_dir: str | None = None):
        self.size = 0  # bytes held
        self._memory: collections.deque[bytes] = collections.deque()
        self._in_memory = 0
        self._memory_limit = memory_limit
        self._tmp_dir = tmp_dir
        self._file = None  # the overflow file, made at the first overflow
        self._read_at = 0
        self._write_at = 0

    @property
    def overflowed(self) -> bool:
        """Is a temporary file open?"""
        return self._file is not None

    def append(self, data: bytes) -> None:
        n = len(data)
        if not n:
            return
        in_memory = self._in_memory
        if self._read_at == self._write_at and (not in_memory or in_memory + n <= self._memory_limit):
            self._memory.append(data)
            self._in_memory = in_memory + n
        else:
            if self._file is None:
                self._file = tempfile.TemporaryFile(dir=self._tmp_dir)
            self._write_at += _write_all(self._file.fileno(), data, self._write_at)
        self.size += n

    def take(self, most: int) -> tuple[list, int]:
        """``(pieces, size)``: up to ``most`` of the oldest bytes, ``([], 0)`` when empty. From
        memory they are whole pieces as they were given (past ``most`` if the first is bigger),
        not copied, but more than ``PIECES_PER_TAKE`` of them are joined into one."""
        if self._in_memory:
            return self._take_memory(most)
        if self._read_at == self._write_at:
            return [], 0
        n = min(most, self._write_at - self._read_at)
        data = os.pread(self._file.fileno(), n, self._read_at)
        if len(data) != n:
            raise OSError(f"response spool file read {len(data)} of {n} bytes")
        self._read_at += n
        self.size -= n
        if self._read_at == self._write_at:  # drained: the file starts over (its disk space back)
            os.ftruncate(self._file.fileno(), 0)
            self._read_at = self._write_at = 0
        return [data], n

    def _take_memory(self, most: int) -> tuple[list, int]:
        memory = self._memory
        if self._in_memory <= most:  # (the common case: all of it, in one step)
            pieces, total = list(memory), self._in_memory
            memory.clear()
        else:
            first = memory.popleft()
            pieces, total = [first], len(first)
            while memory and total + len(memory[0]) <= most:
                piece = memory.popleft()
                pieces.append(piece)
                total += len(piece)
        if len(pieces) > PIECES_PER_TAKE:
            pieces = [b"".join(pieces)]
        self._in_memory -= total
        self.size -= total
        return pieces, total

    def close(self) -> None:
        """Drop what is held and close the file (idempotent)."""
        self._memory.clear()
        self._in_memory = self.size = self._read_at = self._write_at = 0
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _write_all(fd: int, data: bytes, offset: int) -> int:
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.pwrite(fd, view[written:], offset + written)
    return written
