"""WebSocket (RFC 6455) with permessage-deflate (RFC 7692) over a ServerHttpProtocol.

    RequestHead ──check_request()──► HandshakeRequest ──accept()──► Accepted (101 bytes, deflate)
                     │ HandshakeError (400, 426 + Sec-WebSocket-Version: 13): an ordinary error response
                     ▼
    protocol.write(accepted.response); conn = WebSocketConnection(protocol, accepted.deflate, ...)
    conn.attach()  ── protocol.upgrade(conn): bytes now flow to the connection
                     │
    socket ─bytes─► FrameParser (frames.py, sans-IO) ─messages─► queue ─► await conn.receive()
    await conn.send_text()/send_bytes() ─► build_frame ─► protocol.write + await protocol.drain()

Modules: ``frames`` (sans-IO frame parser and writer), ``deflate`` (permessage-deflate
negotiation and per-message compression), ``handshake`` (the upgrade request and the 101),
``connection`` (``WebSocketConnection``, the open WebSocket on the loop).

Handshake (``handshake.py``)
----------------------------
``check_request(head) -> HandshakeRequest``
    Validates the upgrade request: GET, HTTP/1.1, ``Connection: upgrade``,
    ``Upgrade: websocket``, a ``Sec-WebSocket-Key`` that is base64 of 16 bytes,
    ``Sec-WebSocket-Version`` 13 (or 8), no body. Raises ``HandshakeError`` (an
    ``HttpError`` with ``status``, ``message`` and ``headers``): 400 for a malformed
    request, 405 with ``Allow: GET`` for another method, 426 with
    ``Sec-WebSocket-Version: 13`` for another version. ``HandshakeRequest`` has
    ``key``, ``version``, ``subprotocols`` (list of str, as offered, in order) and
    ``extensions`` (the parsed ``Sec-WebSocket-Extensions`` offers).
``is_upgrade_request(head) -> bool``
    True when the request asks for a WebSocket at all (``Upgrade: websocket``).
``select_subprotocol(offered, supported) -> str | None``
    The first of ``supported`` (server preference) that the client offered.
``accept(request, subprotocol=None, compress=True, headers=(), server=b"") -> Accepted``
    Builds the 101 response. ``Accepted`` has ``response`` (bytes to ``protocol.write``),
    ``subprotocol`` and ``deflate`` (``DeflateParams`` or None; pass it on to the
    connection). ``headers`` are extra ``(name, value)`` str pairs (checked like any
    response header); a subprotocol the client did not offer raises ``ValueError``.

Connection (``connection.py``)
------------------------------
``WebSocketConnection(protocol, deflate=None, *, max_message_size=1 MiB, max_queue=16,
max_queue_size=1 MiB, close_timeout=10.0, ping_interval=None, ping_timeout=None, auto_pong=True)``
    ``max_message_size`` (bytes, after decompression; 0 = no limit) is enforced with
    close code 1009. ``max_queue`` (messages) and ``max_queue_size`` (payload bytes,
    decompressed): received messages held unread before parsing and reading pause (the
    queue holds at most ``max_queue_size`` plus one message). Reading also pauses while
    the transport's write buffer is over its high-water mark (pongs the client does not read).
    ``ping_interval``: send a keep-alive ping every that many seconds; the connection
    fails with 1011 when no pong arrives within ``ping_timeout`` (default: the interval).
    ``auto_pong``: answer pings (and keep pings/pongs out of ``receive()``); when False,
    ``receive()`` returns PING and PONG messages and the caller answers with ``pong()``.
``conn.attach()``
    Calls ``protocol.upgrade(conn)`` and feeds the bytes already received after the
    head. Call it right after writing the 101 response, from a task rather than from
    ``on_request`` itself: ``upgrade()`` needs the request parsed to its end, and the
    parser reports the end (``EndOfMessage``) just after ``on_request`` returns.
``await conn.receive() -> Message``
    The next message: ``Message(type, data, extra)`` with ``type`` a ``MsgType``:
    TEXT (``data`` str), BINARY (``data`` bytes), PING/PONG (bytes; only when
    ``auto_pong`` is False) or CLOSE (``data`` the close code, ``extra`` the reason).
    CLOSE is returned once the connection is closed or closing for good, and again on
    every later call: code of the peer's close frame, the code we failed the connection
    with (1002, 1007, 1009, 1011), 1005 for a close frame without a code, or 1006 when
    the connection was lost without a close frame. It raises only ``RuntimeError``
    when another task is already awaiting ``receive()``.
``await conn.send_text(str)``, ``await conn.send_bytes(bytes-like)``
    One message each (one frame), compressed when deflate was negotiated; they wait
    while the client does not read (``protocol.drain()``). Raise ``ConnectionClosed``
    (a ``ConnectionError`` with ``code`` and ``reason``) once the close handshake
    started or the connection is gone.
``await conn.ping(data=b"")``, ``await conn.pong(data=b"")``
    Control frames (payload at most 125 bytes, else ``ValueError``).
``await conn.close(code=1000, reason="")``
    Starts the close handshake (or finishes it), waits for the peer's close frame up to
    ``close_timeout`` seconds, then closes the TCP connection. Idempotent. A code that
    may not be sent (1005, 1006, 1015, < 1000, ...) raises ``ValueError``.
``conn.start_close(code=1000, reason="")``
    The same without waiting (for callbacks); ``await conn.wait_closed()`` waits until
    the TCP connection is gone (always bounded by ``close_timeout``).
``conn.closed`` (bool: no more messages can be sent), ``conn.close_code`` and
``conn.close_reason`` (None until known, set with the CLOSE message), ``conn.error``
(the ``WebSocketError`` we failed the connection with, else None). The chosen
subprotocol is not kept here: ``Accepted.subprotocol`` has it.
``conn.closing()``
    Called by the protocol on graceful worker shutdown: sends close 1001.

Frames (``frames.py``, sans-IO)
-------------------------------
``FrameParser(max_message_size=0, deflate=None)``: ``feed(bytes) -> list[Message]``
(TEXT, BINARY, PING, PONG, CLOSE), raising ``WebSocketError(code, reason)``; or
``receive_data(bytes)`` then ``next_message() -> Message | None``, one at a time
(``last_size``: its payload bytes).
``build_frame(opcode, payload, fin=True, rsv1=False, mask=None) -> bytes``,
``close_payload(code, reason) -> bytes``, ``parse_close(payload) -> (code, reason)``.
"""

from .connection import ConnectionClosed, WebSocketConnection
from .frames import (FrameParser, Message, MsgType, Opcode, WebSocketError, build_frame, close_payload,
                     parse_close)
from .handshake import (
    Accepted,
    HandshakeError,
    HandshakeRequest,
    accept,
    check_request,
    is_upgrade_request,
    select_subprotocol,
)

__all__ = [
    "Accepted",
    "ConnectionClosed",
    "FrameParser",
    "HandshakeError",
    "HandshakeRequest",
    "Message",
    "MsgType",
    "Opcode",
    "WebSocketConnection",
    "WebSocketError",
    "accept",
    "build_frame",
    "check_request",
    "close_payload",
    "is_upgrade_request",
    "parse_close",
    "select_subprotocol",
]
