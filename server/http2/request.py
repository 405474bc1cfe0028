"""An HTTP/2 request head as the same ``RequestHead`` the HTTP/1.1 parser makes.

    [(b":method", b"GET"), (b":path", b"/a?b"), (b":authority", b"x"), (b":scheme", b"https"),
     (b"cookie", b"a=1"), (b"cookie", b"b=2"), ...]   (as HPACK decoded them)
        ──request_head()──► RequestHead(method, target, path, query, (2, 0), headers (Host from
                            :authority, cookies joined with "; "), content_length, has_body...)

The app kinds read it as they read an HTTP/1.1 head, so they serve a stream unchanged.
One pass over the fields checks them (fields.py: a malformed block is a 400 and
PROTOCOL_ERROR), the limits an HTTP/1.1 head has (field count, field size) and a
Content-Length that is a number.

A client sends the same head again and again (HPACK gives the same fields for the same
block: blocks.py). ``KeptHeads`` keeps what the pass made of a few short heads, per
connection, keyed by their fields: each request gets its own copy of the fields, and
whether its fields forward anything (the proxy policy's question, asked once per head).
"""

from multidict import CIMultiDict

from server.protocol.events import RequestHead

from .fields import REQUEST_PSEUDO, BadHead, Malformed, check_names_and_values, check_pseudo, check_regular

HTTP2 = (2, 0)
MAX_KEPT_HEADS = 8  # per connection
MAX_KEPT_HEAD_SIZE = 2048  # bytes of names and values: a longer head is read each time


class KeptHeads:
    """The heads a connection has read, kept (a few short ones) while the same fields come again."""

    __slots__ = ("limits", "forwards", "_heads")

    def __init__(self, limits, forwards=None):
        self.limits = limits
        self.forwards = forwards  # the proxy policy's forwards(headers), or None (no policy)
        self._heads: dict = {}

    def head(self, fields, ended: bool) -> tuple[RequestHead, bool | None]:
        """``(request_head(fields, limits, ended), forwards(its headers))``; the second None when
        not known (no policy, or a head not kept)."""
        heads = self._heads
        try:
            key = tuple(fields)
            kept = heads.get(key)
        except TypeError:  # (a field that does not hash: read, not kept)
            return request_head(fields, self.limits, ended), None
        if kept is None:
            head = request_head(fields, self.limits, ended)
            if sum(len(name) + len(value) for name, value in fields) > MAX_KEPT_HEAD_SIZE:
                return head, None
            if len(heads) >= MAX_KEPT_HEADS:
                heads.clear()
            # (the head kept is not the request's: what its app does to its fields must not reach the next)
            heads[key] = kept = (head, None if self.forwards is None else self.forwards(head.headers))
        head, forwards = kept
        return RequestHead(head.method, head.target, head.path, head.query, HTTP2, head.headers.copy(),
                           list(head.raw_headers), True, head.content_length, False, head.expect_continue, False,
                           not ended and head.content_length != 0), forwards


def request_head(fields, limits, ended: bool) -> RequestHead:
    """The head of a stream whose header block is ``fields``; ``ended``: no body follows."""
    pseudo, host, headers, raw = _split(fields, limits)
    check_pseudo(pseudo, host)
    method = pseudo[":method"]
    if method == "CONNECT":
        raise BadHead("CONNECT is not served", status=405)
    target = pseudo[":path"]
    if len(target) > limits.request_line:
        raise BadHead("Request target too long", status=414)
    authority = pseudo.get(":authority")
    if authority is not None and host is None:
        headers.add("Host", authority)
        raw.append((b"host", authority.encode("latin-1")))
    path, _, query = target.partition("?")
    length = _content_length(headers)
    has_body = not ended and length != 0
    return RequestHead(method, target, path, query, HTTP2, headers, raw, True, length, False,
                       headers.get("Expect", "").lower() == "100-continue", False, has_body)


def _split(fields, limits) -> tuple[dict, str | None, CIMultiDict, list]:
    """Pseudo-fields, the Host field's value, the other fields (cookies joined), and the raw
    pairs; enforces the field count and size limits of HTTP/1.1 heads (431) and the rules of
    fields.py."""
    if len(fields) > limits.fields + 4:  # (+ the four pseudo-fields)
        raise BadHead("Too many header fields", status=431)
    pseudo: dict = {}
    headers = CIMultiDict()
    raw = []
    cookies = []
    names = []
    host = None
    for name, value in fields:
        if len(name) + len(value) + 2 > limits.field_size:
            raise BadHead("Header field too large", status=431)
        if name[:1] == b":":
            _add_pseudo(pseudo, name.decode("latin-1"), value, raw or cookies)
            continue
        names.append(name)
        if name == b"cookie":
            cookies.append(value)
        else:
            check_regular(name, value)
            text = value.decode("latin-1")
            if name == b"host":
                if host is not None:
                    raise Malformed("more than one host")
                host = text
            headers.add(name.decode("latin-1"), text)
            raw.append((name, value))
    check_names_and_values(names, [value for _, value in fields])
    if cookies:
        cookie = b"; ".join(cookies)
        headers.add("Cookie", cookie.decode("latin-1"))
        raw.append((b"cookie", cookie))
    return pseudo, host, headers, raw


def _add_pseudo(pseudo: dict, name: str, value: bytes, after_others) -> None:
    if after_others:
        raise Malformed(f"pseudo-field {name!r} after the other fields")
    if name not in REQUEST_PSEUDO or name in pseudo:
        raise Malformed(f"pseudo-field {name[:64]!r} unknown or repeated")
    pseudo[name] = value.decode("latin-1")


def _content_length(headers: CIMultiDict) -> int | None:
    values = headers.getall("Content-Length", ())
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].isascii() or not values[0].isdigit():
        raise BadHead("Invalid Content-Length")
    return int(values[0])
