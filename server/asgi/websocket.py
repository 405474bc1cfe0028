"""The ASGI ``websocket`` scope over ``server.websocket``.

    upgrade request ──check_request()──► WebSocketSession ──task──► app(scope, receive, send)
    receive(): websocket.connect, then websocket.receive ... websocket.disconnect
    send():    websocket.accept ──► 101 + WebSocketConnection.attach() (frames from then on)
               websocket.close before accept ──► 403 (denial)
               websocket.http.response.start/body ──► an HTTP response instead (denial)
               websocket.send / websocket.close ──► WebSocketConnection

Frames, pings, the close handshake and the limits are the connection's; this
module only maps ASGI messages onto it. After the connection is gone, ``send()``
raises ``ClientDisconnected`` (an ``OSError``, spec 2.4) and ``receive()`` returns
``websocket.disconnect`` with the close code (1006 when there was no close frame).
An app failing before the handshake is answered gets a 500; after, the
WebSocket is closed with 1011. An app returning from an open WebSocket closes it
with 1000.
"""

import asyncio

from server.protocol.errors import ClientDisconnected
from server.websocket import (
    ConnectionClosed,
    HandshakeError,
    MsgType,
    WebSocketConnection,
    accept,
    check_request,
)

from .messages import InvalidMessage, body_of, message_kind, response_headers, status_of
from .scope import websocket_scope

CONNECTING, RESPONDING, OPEN, CLOSED = range(4)
ABNORMAL = 1006


def start_websocket(connection, head, config) -> "WebSocketSession | None":
    """Start the app on an upgrade request; a malformed one is answered with its error.
    ``connection``: the ``ASGIConnection`` the request came on."""
    channel = connection.channel
    try:
        request = check_request(head)
    except HandshakeError as exc:
        channel.handle_error(exc.status, exc.message, headers=exc.headers, close=True)
        return None
    session = WebSocketSession(connection, head, request, config)
    config.spawn(channel.loop, session.run())
    return session


class WebSocketSession:
    def __init__(self, connection, head, request, config):
        self.protocol = protocol = connection.channel
        self.head = head
        self.request = request  # HandshakeRequest
        self.config = config
        self.scope = websocket_scope(head, connection.scope_peer(head), connection.scope_server(),
                                     asgi_version=config.asgi_version,
                                     root_path=config.root_path, state=config.state,
                                     subprotocols=list(request.subprotocols))
        self._state = CONNECTING
        self._connect_sent = False
        self._gone = False  # the client left before the handshake was answered
        self._changed = protocol.loop.create_future()  # wakes a receive() waiting before accept
        self._conn: WebSocketConnection | None = None
        self._denial = None  # (Head, its bytes) of a denial response, until written

    # -- running the app ------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.config.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._abort()
            raise
        except Exception as exc:
            self._app_failed(exc)
            return
        self._app_returned()

    def _app_failed(self, exc: Exception) -> None:
        log = self.config.log
        what = f"WebSocket {self.head.target}"
        if self._gone or (self._conn is not None and self._conn.closed):
            log.debug("%s ended after the connection closed: %r", what, exc)
        elif self._state == OPEN:
            log.exception("Error in ASGI app on %s: closing with 1011", what)
            self._conn.start_close(1011, "Internal error")
            self._state = CLOSED
        elif self._state == CONNECTING:
            log.exception("Error in ASGI app before answering %s", what)
            self._deny(500, exc)
        elif self._state == RESPONDING:
            log.exception("Error in ASGI app during its denial response to %s", what)
            self._abort()

    def _app_returned(self) -> None:
        if self._gone:
            return
        if self._state == OPEN:
            self._conn.start_close(1000)
            self._state = CLOSED
        elif self._state == CONNECTING:
            self.config.log.error("ASGI app returned without answering %s", f"WebSocket {self.head.target}")
            self._deny(500, None)
        elif self._state == RESPONDING:
            self.config.log.error("ASGI app returned without completing its denial response")
            self._abort()

    def _deny(self, status: int, exc) -> None:
        self._state = CLOSED
        self.protocol.handle_error(status, exc=exc, close=True)
        self._wake()

    def _abort(self) -> None:
        self._state = CLOSED
        if self._conn is None:  # the request is still HTTP: its response is cut
            self.protocol.abort_response()
        else:
            self.protocol.close()
        self._wake()

    # -- the protocol's side (before the upgrade) ----------------------------------

    def disconnected(self) -> None:
        self._gone = True
        self._wake()

    def peer_closed(self) -> None:
        """EOF before the handshake was answered: no WebSocket can follow."""
        self.disconnected()
        self.protocol.close()

    def _wake(self) -> None:
        if not self._changed.done():
            self._changed.set_result(None)

    # -- receive ---------------------------------------------------------------------

    async def receive(self) -> dict:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        if self._conn is None and not self._gone and self._state in (CONNECTING, RESPONDING):
            await asyncio.shield(self._changed)  # the app reads before answering: wait for a change
        conn = self._conn
        if conn is None:
            return {"type": "websocket.disconnect", "code": ABNORMAL, "reason": ""}
        message = await conn.receive()
        if message.type is MsgType.TEXT:
            return {"type": "websocket.receive", "text": message.data}
        if message.type is MsgType.BINARY:
            return {"type": "websocket.receive", "bytes": bytes(message.data)}
        return {"type": "websocket.disconnect", "code": message.data, "reason": message.extra or ""}

    # -- send ------------------------------------------------------------------------

    async def send(self, message) -> None:
        kind = message_kind(message, self._gone)
        state = self._state
        if state == CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._deny(403, None)
            elif kind == "websocket.http.response.start":
                self._start_response(message)
            else:
                raise InvalidMessage(f"Expected 'websocket.accept', 'websocket.close' or "
                                     f"'websocket.http.response.start', got {kind!r}")
        elif state == OPEN:
            if kind == "websocket.send":
                await self._send_data(message)
            elif kind == "websocket.close":
                self._close(message)
            else:
                raise InvalidMessage(f"Expected 'websocket.send' or 'websocket.close', got {kind!r}")
        elif state == RESPONDING:
            if kind != "websocket.http.response.body":
                raise InvalidMessage(f"Expected 'websocket.http.response.body', got {kind!r}")
            await self._send_response_body(*body_of(message))
        else:
            raise ClientDisconnected("The WebSocket is closed")

    def _accept(self, message: dict) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise InvalidMessage(f"'subprotocol' must be a str or None, not {subprotocol!r}")
        try:
            accepted = accept(self.request, subprotocol, headers=response_headers(message),
                              server=self.protocol.config.server_header)
        except ValueError as exc:
            raise InvalidMessage(str(exc)) from None
        protocol = self.protocol
        protocol.switched_protocols(accepted.response, accepted.headers)
        conn = WebSocketConnection(protocol, accepted.deflate,
                                   max_message_size=self.config.ws_max_message_size,
                                   ping_interval=self.config.ws_ping_interval)
        self._conn = conn
        self._state = OPEN
        conn.attach()
        self._wake()

    async def _send_data(self, message: dict) -> None:
        text, data = message.get("text"), message.get("bytes")
        try:
            if text is not None and data is None and isinstance(text, str):
                await self._conn.send_text(text)
            elif data is not None and text is None and isinstance(data, (bytes, bytearray, memoryview)):
                await self._conn.send_bytes(data)
            else:
                raise InvalidMessage("'websocket.send' needs exactly one of 'text' (str) or 'bytes' (bytes)")
        except ConnectionClosed as exc:
            raise ClientDisconnected(str(exc)) from None

    def _close(self, message: dict) -> None:
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        try:
            self._conn.start_close(code, reason)
        except (ValueError, TypeError) as exc:
            raise InvalidMessage(f"Invalid close code or reason: {exc}") from None
        self._state = CLOSED

    # -- the denial response (websocket.http.response extension) ------------------------

    def _start_response(self, message: dict) -> None:
        status, reason = status_of(message)
        self._denial = self.protocol.response_head(self.head, status, reason, tuple(response_headers(message)),
                                                   close=True)
        self._state = RESPONDING

    async def _send_response_body(self, body: bytes, more: bool) -> None:
        protocol = self.protocol
        if self._denial is not None:
            (head, data), self._denial = self._denial, None
            wait = protocol.send_response(head, data, body, end=not more)
        else:
            wait = protocol.send_body(body, end=not more)
        if more:
            if wait:
                try:
                    await protocol.drain()
                except ConnectionError:
                    raise ClientDisconnected("The client closed the connection") from None
            return
        self._state = CLOSED
        self._wake()
