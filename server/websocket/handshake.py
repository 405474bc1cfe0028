"""The opening handshake (RFC 6455 s4.2): an upgrade request in, a 101 response out.

    RequestHead ──check_request()──► HandshakeRequest (key, version, subprotocols, extensions)
                     │ HandshakeError: 400 malformed, 405 not GET, 426 other versions
                     ▼
                 accept(request, subprotocol, compress) ──► Accepted(response bytes, deflate params)

Nothing here touches a socket: the caller writes ``Accepted.response`` and then
hands the connection to a ``WebSocketConnection``; a ``HandshakeError`` is
answered as any ``HttpError`` (with its extra ``headers``).

Versions 13 and 8 are accepted: their framing is the same (draft 10's version 8
is what some old clients still send, and what aiohttp accepted).
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from server.protocol.errors import HttpError
from server.protocol.events import RequestHead
from server.protocol.framing import connection_tokens
from server.protocol.grammar import token as _token
from server.protocol.writer import ResponseWriter, check_header

from .deflate import DeflateParams, ExtensionsSyntaxError, negotiate, parse_extensions

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUPPORTED_VERSIONS = ("13", "8")
# Fields of the 101 that the handshake itself writes; an app may not add them.
RESERVED_RESPONSE_FIELDS = frozenset(
    "upgrade connection sec-websocket-accept sec-websocket-protocol sec-websocket-extensions "
    "content-length transfer-encoding date server".split()
)


class HandshakeError(HttpError):
    """A refused upgrade request, answered with ``status`` and ``headers``."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, headers=()):
        super().__init__(message, status=status)
        self.headers = list(headers)


@dataclass(slots=True)
class HandshakeRequest:
    key: str
    version: int
    subprotocols: list[str] = field(default_factory=list)
    extensions: list = field(default_factory=list)  # [(name, [(param, value)])]


@dataclass(slots=True)
class Accepted:
    response: bytes  # the 101 response head, to write as is
    subprotocol: str | None
    deflate: DeflateParams | None
    headers: list = field(default_factory=list)  # its (name, value) fields, for the access log


def is_upgrade_request(head: RequestHead) -> bool:
    """Does the request ask for a WebSocket at all?"""
    return "websocket" in _tokens(head.headers.getall("Upgrade", ()))


def check_request(head: RequestHead) -> HandshakeRequest:
    """Validate an upgrade request (s4.2.1); raise ``HandshakeError`` if it is not one."""
    if head.method != "GET":
        raise HandshakeError("WebSocket handshake must be a GET", status=405, headers=[("Allow", "GET")])
    if head.version < (1, 1):
        raise HandshakeError("WebSocket handshake needs HTTP/1.1")
    if head.has_body:
        raise HandshakeError("WebSocket handshake with a body")
    if not is_upgrade_request(head):
        raise HandshakeError("Missing Upgrade: websocket")
    if "upgrade" not in connection_tokens(head.headers):
        raise HandshakeError("Missing Connection: upgrade")
    version = _version(head)
    key = _key(head)
    try:
        subprotocols = _subprotocols(head.headers.getall("Sec-WebSocket-Protocol", ()))
        extensions = parse_extensions(head.headers.getall("Sec-WebSocket-Extensions", ()))
    except ExtensionsSyntaxError as exc:
        raise HandshakeError(str(exc)) from None
    return HandshakeRequest(key, version, subprotocols, extensions)


def _version(head: RequestHead) -> int:
    values = head.headers.getall("Sec-WebSocket-Version", ())
    if len(values) != 1:
        raise HandshakeError("Missing or repeated Sec-WebSocket-Version")
    value = values[0].strip(" \t")
    if value not in SUPPORTED_VERSIONS:
        raise HandshakeError(f"Unsupported WebSocket version {value!r}", status=426,
                             headers=[("Sec-WebSocket-Version", "13")])
    return int(value)


def _key(head: RequestHead) -> str:
    values = head.headers.getall("Sec-WebSocket-Key", ())
    if len(values) != 1:
        raise HandshakeError("Missing or repeated Sec-WebSocket-Key")
    key = values[0].strip(" \t")
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError("Sec-WebSocket-Key is not base64 of 16 bytes")
    return key


def _tokens(values) -> list[str]:
    return [t.strip(" \t").lower() for v in values for t in v.split(",") if t.strip(" \t")]


def _subprotocols(values: list[str]) -> list[str]:
    names = [t.strip(" \t") for v in values for t in v.split(",") if t.strip(" \t")]
    for name in names:
        if _token.fullmatch(name.encode("latin-1")) is None:
            raise HandshakeError(f"Invalid subprotocol {name!r}")
    return names


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for ``key`` (s4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def select_subprotocol(offered: list[str], supported) -> str | None:
    """The first of ``supported`` (the server's preference) that the client offered."""
    return next((p for p in supported if p in offered), None)


def accept(request: HandshakeRequest, subprotocol: str | None = None, compress: bool = True,
           headers=(), server: bytes = b"") -> Accepted:
    """The 101 response for ``request``; ``headers`` are extra ``(name, value)`` pairs."""
    if subprotocol is not None and subprotocol not in request.subprotocols:
        raise ValueError(f"Subprotocol {subprotocol!r} was not offered by the client")
    deflate = negotiate(request.extensions) if compress else None
    fields = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(request.key))]
    if subprotocol is not None:
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    if deflate is not None:
        fields.append(("Sec-WebSocket-Extensions", deflate.response_header()))
    for name, value in headers:
        check_header(name, value)
        if name.lower() in RESERVED_RESPONSE_FIELDS:
            raise ValueError(f"{name} is set by the WebSocket handshake")
        fields.append((name, value))
    response = ResponseWriter("GET", (1, 1), True, server).head(101, "Switching Protocols", fields)
    return Accepted(response, subprotocol, deflate, fields)
