"""WebSocketResponse: a WebSocket endpoint for native handlers, in the style of aiohttp's.

    async def handler(request):
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)          # handshake: 101, or an HTTP error response
        async for msg in ws:               # TEXT / BINARY (PING / PONG with autoping=False)
            await ws.send_str(msg.data)
        return ws

    prepare ──check_request/accept (server.websocket.handshake)──► protocol.write(101)
            ──► WebSocketConnection.attach(): the connection now belongs to the WebSocket
    receive/send_* ──► WebSocketConnection (frames, deflate, close handshake, backpressure)

A handshake the server refuses raises the matching ``HTTPException`` (400, 405,
426 with ``Sec-WebSocket-Version: 13``), answered as an ordinary error response.
After ``prepare`` the response is ``upgraded``: the web layer writes nothing more.
When the task that ran ``prepare`` ends with the WebSocket still open, it is closed
(1000), so the client is never left waiting; a handler that raised is logged by the
web layer and its WebSocket closed with 1011 (``handler_failed``).

``receive()`` returns the messages, then once the connection ends: CLOSE (the
client's code and reason) when the client closed, ERROR (``data`` the
``WebSocketError``) when the server failed the connection (1002, 1007, 1009, 1011
keep-alive timeout), CLOSED otherwise; CLOSED on every call after that.
"""

import asyncio
import json
from typing import NamedTuple

from server.websocket import (
    ConnectionClosed,
    HandshakeError,
    Message,
    MsgType,
    WebSocketConnection,
    accept,
    check_request,
    select_subprotocol,
)
from server.websocket.frames import CloseCode

from .exceptions import HTTPBadRequest, HTTPMethodNotAllowed, HTTPUpgradeRequired
from .response import StreamResponse

WSMsgType = MsgType
WSMessage = Message
WSCloseCode = CloseCode

_CLOSED_MESSAGE = Message(MsgType.CLOSED, None, None)
_ENDED = (MsgType.CLOSE, MsgType.CLOSING, MsgType.CLOSED)
_RECEIVES_AFTER_CLOSE = 5  # receive() calls on a closed WebSocket before it raises (a busy loop)


class WebSocketReady(NamedTuple):
    ok: bool
    protocol: str | None

    def __bool__(self) -> bool:
        return self.ok


class WebSocketResponse(StreamResponse):
    """Headers and cookies set before ``prepare`` go out with the 101 response."""

    def __init__(self, *, timeout: float = 10.0, receive_timeout: float | None = None, autoping: bool = True,
                 heartbeat: float | None = None, protocols=(), compress: bool = True,
                 max_msg_size: int = 4 * 1024 * 1024, max_queue: int = 16):
        self._conn: WebSocketConnection | None = None
        super().__init__(status=101)
        self._timeout = timeout
        self._receive_timeout = receive_timeout
        self._autoping = autoping
        self._heartbeat = heartbeat
        self._protocols = tuple(protocols)
        self._compress = compress
        self._max_msg_size = max_msg_size
        self._max_queue = max_queue
        self._ws_protocol: str | None = None
        self._ended = False  # receive() has returned the end of the connection
        self._receives_after_end = 0
        self._closed_by_us = False
        self.upgraded = False

    # -- handshake -----------------------------------------------------------------

    def can_prepare(self, request) -> WebSocketReady:
        """Would ``prepare`` succeed, and with which subprotocol?"""
        try:
            handshake = check_request(request.head)
        except HandshakeError:
            return WebSocketReady(False, None)
        return WebSocketReady(True, select_subprotocol(handshake.subprotocols, self._protocols))

    async def prepare(self, request):
        if self._conn is not None:
            return self._conn
        try:
            handshake = check_request(request.head)
        except HandshakeError as exc:
            raise _http_error(request, exc) from None
        self._ws_protocol = select_subprotocol(handshake.subprotocols, self._protocols)
        request.claim_response(self)
        for callback in request.app.on_response_prepare:
            await callback(request, self)
        protocol = request.protocol
        extra = list(self.headers.items()) + [("Set-Cookie", m.OutputString()) for m in self.cookies.values()]
        accepted = accept(handshake, self._ws_protocol, self._compress, extra, protocol.config.server_header)
        protocol.switched_protocols(accepted.response, accepted.headers)
        self._protocol = protocol
        self._conn = WebSocketConnection(
            protocol, accepted.deflate, max_message_size=self._max_msg_size, max_queue=self._max_queue,
            close_timeout=self._timeout, ping_interval=self._heartbeat,
            ping_timeout=self._heartbeat / 2 if self._heartbeat else None, auto_pong=self._autoping)
        self._conn.attach()
        self.upgraded = True
        task = asyncio.current_task()
        if task is not None:
            task.add_done_callback(self._handler_done)
        return self._conn

    def handler_failed(self) -> None:
        """The handler raised after the upgrade (the web layer logged it): close with 1011."""
        self._conn.start_close(CloseCode.INTERNAL_ERROR)

    def _handler_done(self, task: asyncio.Task) -> None:
        """The handler is over: close what it left open (1011 if it failed)."""
        failed = not task.cancelled() and task.exception() is not None
        self._conn.start_close(CloseCode.INTERNAL_ERROR if failed else CloseCode.NORMAL)

    # -- state ---------------------------------------------------------------------

    @property
    def prepared(self) -> bool:
        return self._conn is not None

    @property
    def closed(self) -> bool:
        return self._conn is not None and self._conn.closed

    @property
    def close_code(self) -> int | None:
        return self._conn.close_code if self._conn is not None else None

    @property
    def ws_protocol(self) -> str | None:
        return self._ws_protocol

    @property
    def compress(self) -> bool:
        return self._conn is not None and self._conn.deflate is not None

    def exception(self) -> BaseException | None:
        return self._conn.error if self._conn is not None else None

    def _connection(self) -> WebSocketConnection:
        if self._conn is None:
            raise RuntimeError("Call .prepare() first")
        return self._conn

    # -- receiving -------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Message:
        conn = self._connection()
        if self._ended:
            self._receives_after_end += 1
            if self._receives_after_end >= _RECEIVES_AFTER_CLOSE:
                raise RuntimeError("WebSocket connection is closed.")
            return _CLOSED_MESSAGE
        timeout = timeout if timeout is not None else self._receive_timeout
        message = await (asyncio.wait_for(conn.receive(), timeout) if timeout else conn.receive())
        if message.type != MsgType.CLOSE:
            return message
        self._ended = True
        if conn.error is not None:
            return Message(MsgType.ERROR, conn.error, None)
        if self._closed_by_us or message.data == CloseCode.ABNORMAL:
            return _CLOSED_MESSAGE
        return message  # the client's close frame, already answered

    async def receive_str(self, *, timeout: float | None = None) -> str:
        message = await self.receive(timeout)
        if message.type != MsgType.TEXT:
            raise TypeError(f"Received message {message.type}:{message.data!r} is not WSMsgType.TEXT")
        return message.data

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        message = await self.receive(timeout)
        if message.type != MsgType.BINARY:
            raise TypeError(f"Received message {message.type}:{message.data!r} is not WSMsgType.BINARY")
        return message.data

    async def receive_json(self, *, loads=json.loads, timeout: float | None = None):
        return loads(await self.receive_str(timeout=timeout))

    def __aiter__(self):
        return self

    async def __anext__(self) -> Message:
        message = await self.receive()
        if message.type in _ENDED:
            raise StopAsyncIteration
        return message

    # -- sending -----------------------------------------------------------------------

    async def send_str(self, data: str) -> None:
        if not isinstance(data, str):
            raise TypeError(f"data argument must be str ({type(data)!r})")
        await self._connection().send_text(data)

    async def send_bytes(self, data) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        await self._connection().send_bytes(data)

    async def send_json(self, data, *, dumps=json.dumps) -> None:
        await self.send_str(dumps(data))

    async def ping(self, message: bytes | str = b"") -> None:
        await self._connection().ping(message)

    async def pong(self, message: bytes | str = b"") -> None:
        await self._connection().pong(message)

    async def close(self, *, code: int = CloseCode.NORMAL, message: bytes | str = b"") -> bool:
        """Close handshake; False if the WebSocket was already closing or closed."""
        conn = self._connection()
        if conn.closed:
            await conn.wait_closed()
            return False
        self._closed_by_us = True
        reason = message.decode("utf-8") if isinstance(message, (bytes, bytearray)) else message
        await conn.close(code, reason)
        return True

    # -- not for WebSockets --------------------------------------------------------------

    async def write(self, data) -> None:
        raise RuntimeError("Cannot call .write() for websocket")

    async def write_eof(self, data: bytes = b"") -> None:
        if self._conn is not None:
            await self.close()


def _http_error(request, exc: HandshakeError):
    if exc.status == 405:
        return HTTPMethodNotAllowed(request.head.method, ["GET"], text=exc.message)
    if exc.status == 426:
        return HTTPUpgradeRequired(headers=exc.headers, text=exc.message)
    return HTTPBadRequest(headers=exc.headers, text=exc.message)


__all__ = ["ConnectionClosed", "WSCloseCode", "WSMessage", "WSMsgType", "WebSocketReady", "WebSocketResponse"]
