"""WebSocketConnection: an open WebSocket on the loop, over an upgraded ServerHttpProtocol.

    protocol.data_received ──► FrameParser ──► pings answered, pongs noted, close handled
                                     │ TEXT / BINARY
                                     ▼
                         queue (bounded: see below) ──► await receive()
    await send_text/send_bytes ──► [Deflater] ──► protocol.write ──► await protocol.drain()

What a client sends costs bounded memory, whether the app reads or not:

* the queue of unread messages is bounded in messages (``max_queue``) and in bytes
  of payload, decompressed (``max_queue_size``, 1 MiB by default): once either is
  reached, parsing stops, the bytes not parsed yet stay as they came (compressed,
  at most one socket read), and reading pauses until the app has taken half of the
  queue. The queue holds at most ``max_queue_size`` plus one message (always at
  least one: a message may be as large as ``max_message_size``).
* answers the connection writes on its own (pongs, close frames) are not awaited:
  while the transport's buffer is over its high-water mark (the client does not
  read), reading pauses, so a client flooding pings without reading the pongs stops
  being read; reading resumes when the buffer drains. Such a client is closed by
  the minimum response rate (the transport stays paused for writing), by a
  keep-alive ping left unanswered, or else only when it goes.

Closing (RFC 6455 s7):

* the peer's close frame is answered with the same code, then the server closes
  the TCP connection (s7.1.1: the server closes first);
* ``close()`` sends ours, waits for the answer up to ``close_timeout``, then closes;
* a protocol error fails the connection: the close frame with the error's code
  (1002, 1007, 1009), then the TCP connection is closed without waiting;
* graceful worker shutdown (``closing()``) sends close 1001;
* a keep-alive ping left without a pong for ``ping_timeout`` fails with 1011.

Every way of closing arms the same timer: past ``close_timeout`` the transport is
aborted, so a peer that never answers nor reads cannot hold the connection.
"""

import asyncio
import os
from collections import deque

from server.protocol.wakeup import Wakeable

from .deflate import Deflater, Inflater
from .frames import (
    CloseCode,
    FrameParser,
    Message,
    MsgType,
    Opcode,
    WebSocketError,
    build_frame,
    close_payload,
    frame_header,
)

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_MAX_QUEUE_SIZE = 1024 * 1024  # unread payload bytes past which parsing and reading pause
_SMALL_FRAME = 16 * 1024  # header and payload are joined below this, written apart above
_PAUSE_REASON = "websocket"  # the queue is full
_WRITES_PAUSE_REASON = "websocket writes"  # our answers wait in the transport


class ConnectionClosed(ConnectionError):
    """Sending on a WebSocket whose closing handshake has started or that is gone."""

    def __init__(self, code: int | None, reason: str | None):
        super().__init__(f"WebSocket closed ({code} {reason or ''})".rstrip())
        self.code = code
        self.reason = reason


class WebSocketConnection(Wakeable):
    def __init__(self, protocol, deflate=None, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 max_queue: int = 16, max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE, close_timeout: float = 10.0,
                 ping_interval: float | None = None, ping_timeout: float | None = None, auto_pong: bool = True):
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if max_queue_size < 1:
            raise ValueError("max_queue_size must be at least 1")
        self.protocol = protocol
        self.loop = protocol.loop
        self.deflate = deflate  # the negotiated DeflateParams, or None
        self.auto_pong = auto_pong
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout if ping_timeout is not None else ping_interval
        self._parser = FrameParser(max_message_size, Inflater(deflate) if deflate else None)
        self._deflater = Deflater(deflate) if deflate else None
        self._queue: deque[tuple[Message, int]] = deque()  # (message, its payload size)
        self._max_queue = max_queue
        self._max_queue_size = max_queue_size
        self._queued_bytes = 0
        self._reading_paused = False  # the queue is full
        self._writes_wait: asyncio.Task | None = None  # reading paused until our writes drain
        self._lost = self.loop.create_future()
        self._close_sent: tuple[int | None, str] | None = None  # (code, reason) we sent
        self._close_received = False
        self._end: Message | None = None  # the CLOSE message receive() returns for good
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.error: WebSocketError | None = None  # why we failed the connection, if we did
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None  # keep-alive ping awaiting its pong

    # -- set up ---------------------------------------------------------------

    def attach(self) -> None:
        """Take the connection over from the protocol (after the 101 is written)."""
        leftover = self.protocol.upgrade(self)
        if self.protocol.transport is None:  # the client left during the handshake
            self.connection_lost(None)
            return
        if self.ping_interval:
            self._ping_timer = self.loop.call_later(self.ping_interval, self._keepalive_ping)
        if leftover:
            self.data_received(leftover)

    # -- receiving --------------------------------------------------------------

    async def receive(self) -> Message:
        """The next message; a CLOSE message once the connection is closing for good."""
        if self._waiter is not None:
            raise RuntimeError("receive() is already being awaited")
        while True:
            if self._queue:
                message, size = self._queue.popleft()
                self._queued_bytes -= size
                if (self._reading_paused and len(self._queue) <= self._max_queue // 2
                        and self._queued_bytes <= self._max_queue_size // 2):
                    self._parse()  # the bytes left unparsed, then reading again
                return message
            if self._end is not None:
                return self._end
            await self._sleep(self.loop)

    def _queue_full(self) -> bool:
        """No more messages for now (after our close frame, data is dropped: never full)."""
        return ((len(self._queue) >= self._max_queue or self._queued_bytes >= self._max_queue_size)
                and self._close_sent is None and self._end is None)

    def _parse(self) -> None:
        """Messages out of the received bytes while the queue has room; reading pauses while
        it has none, and while our answers wait for the client to read."""
        parser = self._parser
        while not self._queue_full():
            try:
                message = parser.next_message()
            except WebSocketError as exc:
                self._fail(exc.code, exc.reason)
                return
            if message is None:
                break
            self._on_message(message)
        full = self._queue_full()
        if full != self._reading_paused:
            self._reading_paused = full
            if full:
                self.protocol.pause_reading(_PAUSE_REASON)
            else:
                self.protocol.resume_reading(_PAUSE_REASON)
        if self.protocol.writing_paused and self._writes_wait is None and not self._lost.done():
            self.protocol.pause_reading(_WRITES_PAUSE_REASON)
            self._writes_wait = self.loop.create_task(self._read_when_drained())

    async def _read_when_drained(self) -> None:
        try:
            await self.protocol.drain()
        except ConnectionError:
            return  # gone: nothing to read any more
        finally:
            self._writes_wait = None
        self.protocol.resume_reading(_WRITES_PAUSE_REASON)

    def _deliver(self, message: Message) -> None:
        self._queue.append((message, self._parser.last_size))
        self._queued_bytes += self._parser.last_size
        self._wake()

    # -- sending ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """No more messages can be sent: the close handshake started or the connection is gone."""
        transport = self.protocol.transport
        return (self._close_sent is not None or self._close_received or transport is None
                or transport.is_closing())

    async def send_text(self, data: str) -> None:
        await self._send_message(Opcode.TEXT, data.encode("utf-8"))

    async def send_bytes(self, data) -> None:
        await self._send_message(Opcode.BINARY, bytes(data) if not isinstance(data, bytes) else data)

    async def ping(self, data: bytes | str = b"") -> None:
        await self._send_control(Opcode.PING, data)

    async def pong(self, data: bytes | str = b"") -> None:
        await self._send_control(Opcode.PONG, data)

    async def _send_message(self, opcode: int, payload: bytes) -> None:
        self._check_open()
        rsv1 = False
        if self._deflater is not None:
            payload, rsv1 = self._deflater.compress(payload), True
        header = frame_header(opcode, len(payload), True, rsv1)
        if len(payload) < _SMALL_FRAME:
            self.protocol.write(header + payload)
        else:
            self.protocol.write(header)
            self.protocol.write(payload)
        await self._drain()

    async def _send_control(self, opcode: int, data) -> None:
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        frame = build_frame(opcode, payload)  # ValueError past 125 bytes
        self._check_open()
        self.protocol.write(frame)
        await self._drain()

    def _check_open(self) -> None:
        if self.closed:
            code, reason = self._close_sent or (self.close_code, self.close_reason)
            raise ConnectionClosed(code if code is not None else CloseCode.ABNORMAL, reason)

    def _write(self, data: bytes) -> None:
        """Write a frame of our own unless the transport is already closing."""
        transport = self.protocol.transport
        if transport is not None and not transport.is_closing():
            self.protocol.write(data)

    async def _drain(self) -> None:
        try:
            await self.protocol.drain()
        except ConnectionResetError:
            raise ConnectionClosed(self.close_code or CloseCode.ABNORMAL, self.close_reason) from None

    # -- closing ----------------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close handshake: send ours (if not yet), wait for the peer's, close the TCP connection."""
        self.start_close(code, reason)
        await self.wait_closed()

    def start_close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """``close()`` without waiting: send our close frame (if not yet) and arm the close timer."""
        if self._close_sent is None and not self._lost.done():
            payload = close_payload(code, reason)  # ValueError for a code one may not send
            self._send_close(payload, code, reason)

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is gone (bounded by the close timer)."""
        await asyncio.shield(self._lost)

    def closing(self) -> None:
        """Graceful worker shutdown: start the close handshake with 1001."""
        if self._close_sent is None and not self._lost.done():
            self._send_close(close_payload(CloseCode.GOING_AWAY, "Server shutting down"),
                             CloseCode.GOING_AWAY, "Server shutting down")

    def _send_close(self, payload: bytes, code: int | None, reason: str) -> None:
        self._close_sent = (code, reason)
        self._write(build_frame(Opcode.CLOSE, payload))
        self._cancel_ping()
        if self._close_received:
            self.protocol.close()
        self._arm_close_timer()
        if self._reading_paused:  # the peer's answer must be read; further data is dropped
            self._parse()

    def _arm_close_timer(self) -> None:
        if self._close_timer is None and not self._lost.done():
            self._close_timer = self.loop.call_later(self.close_timeout, self._abort)

    def _abort(self) -> None:
        self._close_timer = None
        transport = self.protocol.transport
        if transport is not None:
            transport.abort()

    def _end_with(self, code: int, reason: str) -> None:
        """Record how the connection ended; receive() returns it after the queued messages."""
        if self._end is None:
            self.close_code, self.close_reason = code, reason
            self._end = Message(MsgType.CLOSE, code, reason)
            self._wake()

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (s7.1.7): our close frame, then close without waiting."""
        if self._close_sent is None and not self._lost.done():
            self._close_sent = (code, reason)
            self._write(build_frame(Opcode.CLOSE, close_payload(code, reason[:120])))
        self.error = WebSocketError(code, reason)
        self._end_with(code, reason)
        self._cancel_ping()
        self.protocol.close()
        self._arm_close_timer()

    # -- the receiver interface of ServerHttpProtocol.upgrade -------------------

    def data_received(self, data: bytes) -> None:
        self._parser.receive_data(data)
        self._parse()

    def _on_message(self, message: Message) -> None:
        kind = message.type
        if kind is MsgType.PING:
            if self.auto_pong:
                if self._close_sent is None:
                    self._write(build_frame(Opcode.PONG, message.data))
                return
        elif kind is MsgType.PONG:
            self._on_pong(message.data)
            if self.auto_pong:
                return
        elif kind is MsgType.CLOSE:
            self._on_close_frame(message.data, message.extra)
            return
        if self._close_sent is None:  # after our close frame, data is not wanted any more
            self._deliver(message)

    def _on_close_frame(self, code: int, reason: str) -> None:
        self._close_received = True
        if self._close_sent is None:
            echo = close_payload(None if code == CloseCode.NO_STATUS else code, reason)
            self._close_sent = (code, reason)
            self._write(build_frame(Opcode.CLOSE, echo))
        self._cancel_ping()
        self._end_with(code, reason)
        self.protocol.close()
        self._arm_close_timer()

    def eof_received(self) -> bool:
        return False  # no close frame will come: close our side too

    def connection_lost(self, exc) -> None:
        self._cancel_ping()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._end_with(CloseCode.ABNORMAL, "")
        if not self._lost.done():
            self._lost.set_result(None)
        self._wake()

    # -- keep-alive pings -------------------------------------------------------

    def _keepalive_ping(self) -> None:
        self._ping_timer = None
        if self.closed:
            return
        self._ping_payload = os.urandom(4)
        self._write(build_frame(Opcode.PING, self._ping_payload))
        self._ping_timer = self.loop.call_later(self.ping_timeout, self._ping_timed_out)

    def _on_pong(self, data: bytes) -> None:
        if self._ping_payload is not None and data == self._ping_payload:
            self._ping_payload = None
            self._cancel_ping()
            if not self.closed:
                self._ping_timer = self.loop.call_later(self.ping_interval, self._keepalive_ping)

    def _ping_timed_out(self) -> None:
        self._ping_timer = None
        self._fail(CloseCode.INTERNAL_ERROR, "Keep-alive ping timeout")

    def _cancel_ping(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
