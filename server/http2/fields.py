"""The checks of a request's header block that make it malformed (RFC 9113 s8.1.1, s8.2,
s8.3): a stream error, PROTOCOL_ERROR, that stream alone refused.

hyper-h2 can check these itself, but runs a chain of eight generators over the fields and a
Python loop over every byte of every name and value: about a fifth of the worker's time on
small requests. Here the names and values of a block are each checked by one regular
expression over them all (joined by a byte neither may hold), the rest in the pass that
request.py makes over the fields anyway. The rules are h2's, or stricter where the HTTP/1.1
parser is (a name is a lowercase token; a value holds no control byte but HTAB), so a field
reaches an app only if it could have come in an HTTP/1.1 request:

- names: lowercase tokens (RFC 9110 s5.6.2); pseudo-fields only those of a request
  (``:method``, ``:scheme``, ``:authority``, ``:path``, ``:protocol``), each once, before
  the other fields;
- values: visible bytes, obs-text, and blanks between them, none at either end;
- no connection-specific field (``connection``, ``keep-alive``, ``proxy-connection``,
  ``transfer-encoding``, ``upgrade``) and ``te`` only as ``trailers``;
- ``:method``, and ``:scheme`` and a non-empty ``:path`` unless the method is CONNECT;
  ``:protocol`` only with CONNECT; at most one ``host``, equal to ``:authority`` when both
  are there, and one of the two;
- trailers: the same rules for names and values, and no pseudo-field.
"""

import re

from server.protocol.errors import HttpError
from server.protocol.grammar import FIELD_VALUE


class BadHead(HttpError):
    """A stream's head is refused with a status (400, 431) on that stream only."""

    reset = "NO_ERROR"  # the RST_STREAM that follows the answer if the client is still sending


class Malformed(BadHead):
    """A malformed request (RFC 9113 s8.1.1): a 400, then PROTOCOL_ERROR."""

    status = 400
    reset = "PROTOCOL_ERROR"

    def __init__(self, why: str):
        super().__init__(f"Malformed request: {why}")


LOWER_TCHAR = rb"!#$%&'*+\-.^_`|~0-9a-z"
_name = re.compile(rb"[" + LOWER_TCHAR + rb"]++")
_names = re.compile(rb"[" + LOWER_TCHAR + rb"]++(?:\n[" + LOWER_TCHAR + rb"]++)*+")
_values = re.compile(FIELD_VALUE + rb"(?:\n" + FIELD_VALUE + rb")*+")

REQUEST_PSEUDO = frozenset((":method", ":scheme", ":authority", ":path", ":protocol"))
CONNECTION_SPECIFIC = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                 b"upgrade"))


def check_names_and_values(names: list, values: list) -> None:
    """Every name (not the pseudo-fields') a lowercase token; every value well formed."""
    joined = b"\n".join(names)  # (a LF of a name's own would make two: the count tells)
    if names and (_names.fullmatch(joined) is None or joined.count(b"\n") != len(names) - 1):
        bad = next((n for n in names if _name.fullmatch(n) is None), b"")
        raise Malformed(f"invalid field name {bad[:64]!r}")
    joined = b"\n".join(values)
    if values and (_values.fullmatch(joined) is None or joined.count(b"\n") != len(values) - 1):
        raise Malformed("invalid field value (a control byte, or blanks at either end)")


def check_regular(name: bytes, value: bytes) -> None:
    """A field that HTTP/2 forbids in a request (RFC 9113 s8.2.2)."""
    if name in CONNECTION_SPECIFIC or (name == b"te" and value.lower() != b"trailers"):
        raise Malformed(f"connection-specific field {name.decode('latin-1')!r}")


def check_pseudo(pseudo: dict, host: str | None) -> None:
    """The pseudo-fields a request needs, and Host agreeing with ``:authority``."""
    method = pseudo.get(":method")
    if method is None:
        raise Malformed("no :method")
    if method != "CONNECT":
        if ":protocol" in pseudo:
            raise Malformed(":protocol without CONNECT")
        if ":scheme" not in pseudo or not pseudo.get(":path"):
            raise Malformed("no :scheme, or no :path or an empty one")
    authority = pseudo.get(":authority")
    if authority is None and host is None:
        raise Malformed("neither :authority nor host")
    if authority is not None and host is not None and host != authority:
        raise Malformed("host disagrees with :authority")


def check_trailers(fields) -> None:
    """Trailers: well-formed names and values, no pseudo-field, no connection-specific field."""
    names = []
    for name, value in fields:
        if name[:1] == b":":
            raise Malformed(f"pseudo-field {name[:64]!r} in trailers")
        check_regular(name, value)
        names.append(name)
    check_names_and_values(names, [value for _, value in fields])
