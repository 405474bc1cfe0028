"""Request-body buffers count what they hold in bytes, whatever the client's chunking.

A body arrives as the pieces the parser hands over: one per socket read for a
``Content-Length`` body, one per chunk (or part of one) for a chunked body. A
client choosing ``1\\r\\nx\\r\\n`` chunks, or one byte per TCP segment, would make
each buffered byte a bytes object and a deque slot, about 60 bytes, so a buffer
held to 256 KiB of payload could hold 16 MiB and more. The body buffers of every
app kind (``web.streams.StreamReader``, ``asgi.body.RequestBody``,
``wsgi.body.BlockingInput``) therefore append pieces shorter than ``SMALL_PIECE``
to one bytearray (``SmallPieces``) while the buffer already holds bytes, sealed
into a bytes piece when the app reads or a large piece follows. A buffered piece
then costs at most ``1 + 64/1024`` of its size, and the high-water marks hold in
bytes of memory.

Joining happens in the buffers rather than in the parser: the pieces of an
ordinary body (a socket read each, or one small body) pass through untouched, at
the cost of a length check each; only pieces that would wait behind others are
copied, once. Counting a fixed overhead per piece instead would still let one
socket read (256 KiB of 1-byte chunks) put 43,000 pieces behind a paused mark.
"""

SMALL_PIECE = 1024  # bytes; shorter pieces share one buffer


class SmallPieces:
    """The small pieces received since the last seal, in one bytearray."""

    __slots__ = ("_buffer",)

    def __init__(self):
        self._buffer = bytearray()

    def __len__(self) -> int:
        return len(self._buffer)

    def add(self, data) -> None:
        self._buffer += data

    def seal(self) -> bytes:
        """What was added since the last seal, as bytes; empties the buffer."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data
