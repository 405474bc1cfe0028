"""Checks of the messages an ASGI app sends, turned into what the writer takes.

An invalid message raises ``InvalidMessage`` (a ``RuntimeError``) in the app's
``send()`` with a message that says what was wrong; a header that could split
the response (CR, LF, NUL, a non-token name) or a hop-by-hop header raises the
writer's ``ResponseHeaderError`` when the head is framed, before anything
reaches the wire. ``Transfer-Encoding`` from the app is dropped, as the ASGI
spec asks: the server frames the body itself.
"""

from http import HTTPStatus

from server.protocol.errors import ClientDisconnected
from server.protocol.writer import check_header

FORBIDDEN_TRAILERS = frozenset(
    "content-length transfer-encoding host connection keep-alive te trailer upgrade "
    "content-type content-encoding content-range cache-control expect max-forwards "
    "pragma range authorization set-cookie".split()
)


_REASONS = {status.value: status.phrase for status in HTTPStatus}


class InvalidMessage(RuntimeError):
    """The app sent a message the ASGI spec does not allow here."""


def message_type(message) -> str:
    if not isinstance(message, dict):
        raise InvalidMessage(f"ASGI messages are dicts, not {type(message).__name__}")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage(f"ASGI message without a 'type': {message!r:.200}")
    return kind


def message_kind(message, gone: bool) -> str:
    """The type of a message the app sends; ``ClientDisconnected`` once the client is ``gone``."""
    kind = message_type(message)
    if gone:
        raise ClientDisconnected("The client closed the connection")
    return kind


def status_of(message: dict) -> tuple[int, str]:
    """``(status, reason)`` of an ``http.response.start`` message."""
    status = message.get("status")
    if type(status) is not int or not 200 <= status <= 999:
        raise InvalidMessage(f"'status' must be an int from 200 to 999, not {status!r}")
    return status, _REASONS.get(status, "")


def response_headers(message: dict, key: str = "headers") -> list[tuple[str, str]]:
    """The message's byte-string header pairs as latin-1 ``str`` pairs for the writer."""
    return header_pairs(message.get(key))


def header_pairs(raw) -> list[tuple[str, str]]:
    """Byte-string header pairs (an iterable, or None) as latin-1 ``str`` pairs for the writer."""
    headers = []
    for pair in raw or ():
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise InvalidMessage(f"a header must be a [name, value] pair, not {pair!r:.100}") from None
        if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
            raise InvalidMessage(f"header names and values must be bytes, not {pair!r:.100}")
        name = name.decode("latin-1")
        if name.lower() == "transfer-encoding":
            continue
        headers.append((name, value.decode("latin-1")))
    return headers


def body_of(message: dict) -> tuple[bytes, bool]:
    """``(body, more_body)`` of an ``http.response.body`` message."""
    body = message.get("body", b"")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidMessage(f"'body' must be bytes, not {type(body).__name__}")
    return bytes(body), bool(message.get("more_body", False))


def trailer_lines(headers: list[tuple[str, str]]) -> bytes:
    """The trailer section's field lines (checked like header fields)."""
    lines = []
    for name, value in headers:
        check_header(name, value)
        if name.lower() in FORBIDDEN_TRAILERS:
            raise InvalidMessage(f"{name} is not allowed in trailers")
        lines.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
    return b"".join(lines)
