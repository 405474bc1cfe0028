"""The request body of an ASGI HTTP request: parser ``Data`` in, ``http.request`` messages out.

    ServerHttpProtocol ──feed_data()/feed_eof()──► RequestBody ──receive()──► app

Each ``receive()`` hands the app everything buffered so far as one
``http.request`` message (``more_body`` True until the end of the body). The
buffer is bounded: past ``high_water`` unread bytes the transport is paused
(``pause_reading("asgi")``), so a client uploading faster than the app reads
waits in its socket; reading resumes when the app has taken the buffer.
Once the body is delivered, ``receive()`` waits for the end of the exchange
(the response is complete, the client went away or sent EOF) and then returns
``http.disconnect``. The lazy ``100 Continue`` goes out on the first ``receive()``.
Pieces shorter than ``SMALL_PIECE`` (tiny chunks) share one bytearray, so the mark
holds in bytes of memory whatever the chunking (``server.protocol.pieces``).
"""

import collections

from server.protocol.pieces import SMALL_PIECE, SmallPieces
from server.protocol.wakeup import Wakeable

HIGH_WATER = 256 * 1024  # unread body bytes before the transport is paused

DISCONNECT = {"type": "http.disconnect"}


class RequestBody(Wakeable):
    """The body sink of one request and the source of the app's ``receive()``."""

    def __init__(self, protocol, expected: bool, on_error, high_water: int = HIGH_WATER):
        self._protocol = protocol
        self._on_error = on_error  # (exc) -> bool: the sink's set_exception answer
        self._high_water = high_water
        self._chunks: collections.deque[bytes] = collections.deque()
        self._small: SmallPieces | None = None  # small pieces fed after _chunks', not sealed yet
        self._size = 0
        self._complete = not expected  # the whole body has arrived
        self._delivered = False  # the message with more_body=False was handed over
        self._ended = False  # response done or client gone: receive() says http.disconnect
        self._peer_closed = False  # the client sent EOF: http.disconnect once the body is delivered
        self._first = True
        self._paused = False

    # -- sink side (the protocol) ------------------------------------------

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        if self._ended or not data:
            return
        if len(data) < SMALL_PIECE and self._size:  # (a small body alone is kept as it came)
            small = self._small
            if small is None:
                small = self._small = SmallPieces()
            small.add(data)
        else:
            if self._small:
                self._chunks.append(self._small.seal())
            self._chunks.append(data)
        self._size += len(data)
        self._wake()
        if self._size > self._high_water and not self._paused:
            self._paused = True
            self._protocol.pause_reading("asgi")

    def feed_eof(self, trailers=None) -> None:
        self._complete = True  # request trailers have no ASGI message: dropped
        self._wake()

    def set_exception(self, exc: BaseException) -> bool:
        on_error = self._on_error
        if on_error is None:  # (outlived: what the exchange's answer would be)
            self.end()
            return False
        return on_error(exc)

    # -- the exchange ------------------------------------------------------

    def end(self) -> None:
        """No more body for the app: the response is complete or the client is gone."""
        self._ended = True
        self._chunks.clear()
        self._small = None
        self._size = 0
        self._resume()
        self._wake()

    def outlived(self) -> None:
        """The exchange is over (its response done, its app returned): a failure of the body
        now only ends it and leaves the answer to the protocol, which needs nothing of the
        exchange. Dropping its callback breaks the cycle exchange -> body -> callback, so
        reference counting frees both at once instead of the cyclic collector, later."""
        self._on_error = None

    def peer_closed(self) -> None:
        """The client will send nothing more (and may be gone): after the body, http.disconnect."""
        self._peer_closed = True
        self._wake()

    # -- app side ----------------------------------------------------------

    async def receive(self) -> dict:
        if self._first:
            self._first = False
            if not self._ended:
                self._protocol.send_continue()
        while True:
            if self._ended:
                return DISCONNECT
            if self._size or (self._complete and not self._delivered):
                return self._take()
            if self._peer_closed:
                return DISCONNECT
            if self._waiter is not None:
                raise RuntimeError("receive() called while another receive() is waiting")
            await self._sleep(self._protocol.loop)

    def _take(self) -> dict:
        chunks = self._chunks
        if self._small:
            chunks.append(self._small.seal())
        body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        self._resume()
        more = not self._complete
        if not more:
            self._delivered = True
        return {"type": "http.request", "body": body, "more_body": more}

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._protocol.resume_reading("asgi")
