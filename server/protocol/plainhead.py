"""The one-pass parse of a plain request head, in Python and in C.

    head bytes ──plain_head()──► (method, target, path, query, minor, raw, pairs, special)
                      │ None: not plain, the full checks (headreader.py) decide
                      ▼
          special & NEEDS_CHECKS == SPECIAL_HOST ──simple_head()──► RequestHead

    head bytes ──request_head() (compiled only)──► settled RequestHead, or None: the above

Most heads are plain: an origin-form target, HTTP/1.0 or 1.1, well-formed fields
within the limits. ``plain_head`` parses those in one pass and declines (None)
any other head, which the full checks then accept or refuse with a precise error.
It is the compiled ``_chead.parse_plain_head`` when that extension is built, else
``plain_head_py``, the reference it must match exactly; ``ASYNCWORKER_PURE_PYTHON=1``
(read at import) forces the latter. When a plain head holds one Host and no other
field that bears on framing, ``simple_head`` (compiled too, with ``simple_head_py``
as its reference) builds the head without the framing checks.
"""

from multidict import CIMultiDict, istr

from . import grammar
from .compiled import compiled
from .events import RequestHead

VERSIONS = ((1, 0), (1, 1))  # by minor version

# Bits of the ``special`` mask of a plain head: a framing-relevant field sets its
# bit when it appears and the bit above it when it appears again.
SPECIAL_HOST = 1 << 0
SPECIAL_CONTENT_LENGTH = 1 << 2
SPECIAL_TRANSFER_ENCODING = 1 << 4
SPECIAL_CONNECTION = 1 << 6
SPECIAL_EXPECT = 1 << 8
SPECIAL_UPGRADE = 1 << 10
SPECIAL_CONTENT_TYPE = 1 << 12
_SPECIAL_FIELDS = {
    b"host": SPECIAL_HOST,
    b"content-length": SPECIAL_CONTENT_LENGTH,
    b"transfer-encoding": SPECIAL_TRANSFER_ENCODING,
    b"connection": SPECIAL_CONNECTION,
    b"expect": SPECIAL_EXPECT,
    b"upgrade": SPECIAL_UPGRADE,
    b"content-type": SPECIAL_CONTENT_TYPE,
}
# A plain head skips ``build_head`` when these bits of its mask are just SPECIAL_HOST:
# one Host, no field that bears on framing. Not Upgrade, which matters only with a
# Connection field (itself checked), nor one Content-Type: only a second is an error.
NEEDS_CHECKS = (
    SPECIAL_HOST * 3
    | SPECIAL_CONTENT_LENGTH * 3
    | SPECIAL_TRANSFER_ENCODING * 3
    | SPECIAL_CONNECTION * 3
    | SPECIAL_EXPECT * 3
    | SPECIAL_CONTENT_TYPE * 2
)


def plain_head_py(head: bytes, request_line: int, field_size: int, fields: int, /) -> tuple | None:
    """Parse a plain head (see the module docstring), or return None.

    Returns ``(method, target, path, query, minor, raw, pairs, special)``: ``raw``
    holds the (name, value) bytes of each field, ``pairs`` the same decoded (names
    ASCII, values latin-1), ``special`` the SPECIAL_* bits of the fields it has.
    This is the reference for the compiled parser, which must agree on every input.
    """
    line_end = head.find(b"\r\n")
    if line_end < 0:
        line_end = len(head)
    # A field line with its CRLF is never longer than all of them: one check for all.
    if line_end > request_line or len(head) - line_end > field_size:
        return None
    m = grammar.plain_request_line.fullmatch(head, 0, line_end)
    if m is None or grammar.field_lines.fullmatch(head, line_end) is None:
        return None
    method, target, minor = m.groups()
    if method == b"CONNECT":
        return None
    raw = grammar.crlf_field_line.findall(head, line_end)
    if len(raw) > fields:
        return None
    pairs = [(name.decode("ascii"), value.decode("latin-1")) for name, value in raw]
    special = 0
    get_bit = _SPECIAL_FIELDS.get
    for name, _ in raw:
        bit = get_bit(name.lower())
        if bit:
            special |= bit | (special & bit) << 1
    target = target.decode("ascii")
    path, _, query = target.partition("?")
    return method.decode("ascii"), target, path, query, minor[0] - 0x30, raw, pairs, special


def simple_head_py(plain: tuple) -> RequestHead:
    """The head of a ``plain_head`` result with one Host and no other field that bears
    on framing: what ``build_head`` decides for it (keep-alive for HTTP/1.1, no body,
    not chunked, no 100-continue, no upgrade), without its checks. The reference for
    the compiled ``simple_head``."""
    method, target, path, query, minor, raw, pairs, _ = plain
    # Positional, as keywords would double the cost of this call.
    return RequestHead(method, target, path, query, VERSIONS[minor], CIMultiDict(pairs), raw,
                       minor == 1, 0, False, False, False, False)


plain_head_c = compiled("parse_plain_head")
plain_head = plain_head_c or plain_head_py
simple_head_c = compiled("simple_head")
if simple_head_c is not None:
    compiled("set_head_types")(RequestHead, CIMultiDict, VERSIONS)
    compiled("set_name_type")(istr)
simple_head = simple_head_c or simple_head_py
# The compiled shortcut for a whole common head, settled in one call (its Host already known
# valid, at most one Content-Length and one plain Connection); None without the extension.
# It has no Python twin: the parser's general path (plain_head, simple_head, then the settling
# of headreader.py and host.py) is its reference, and takes every head it declines.
request_head = compiled("request_head")
