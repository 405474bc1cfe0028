"""An HTTP/2 request head as the same ``RequestHead`` the HTTP/1.1 parser makes.

    [(b":method", b"GET"), (b":path", b"/a?b"), (b":authority", b"x"), (b":scheme", b"https"),
     (b"cookie", b"a=1"), (b"cookie", b"b=2"), ...]   (validated by h2: lowercase names,
                                                      pseudo-fields first, no connection fields)
        ──request_head()──► RequestHead(method, target, path, query, (2, 0), headers (Host from
                            :authority, cookies joined with "; "), content_length, has_body...)

The app kinds read it as they read an HTTP/1.1 head, so they serve a stream unchanged.
What h2 does not check is checked here: the limits an HTTP/1.1 head has (field count,
field size) and a Content-Length that is a number.
"""

from multidict import CIMultiDict

from server.protocol.errors import HttpError
from server.protocol.events import RequestHead

HTTP2 = (2, 0)


class BadHead(HttpError):
    """A stream's head is refused with a status (400, 431) on that stream only."""


def request_head(fields, limits, ended: bool) -> RequestHead:
    """The head of a stream whose header block is ``fields``; ``ended``: no body follows."""
    pseudo, headers, raw = _split(fields, limits)
    method = pseudo.get(":method")
    target = pseudo.get(":path")
    if method is None or (target is None and method != "CONNECT"):
        raise BadHead("Missing :method or :path")
    if method == "CONNECT":
        raise BadHead("CONNECT is not served", status=405)
    if len(target or "") > limits.request_line:
        raise BadHead("Request target too long", status=414)
    authority = pseudo.get(":authority")  # (h2 refuses a Host that disagrees with it)
    if authority is not None and "Host" not in headers:
        headers.add("Host", authority)
        raw.append((b"host", authority.encode("latin-1")))
    path, _, query = target.partition("?")
    length = _content_length(headers)
    has_body = not ended and length != 0
    return RequestHead(method, target, path, query, HTTP2, headers, raw, True, length, False,
                       headers.get("Expect", "").lower() == "100-continue", False, has_body)


def _split(fields, limits) -> tuple[dict, CIMultiDict, list]:
    """Pseudo-fields, the other fields (cookies joined), and the raw pairs; enforces the
    field count and size limits of HTTP/1.1 heads (431)."""
    if len(fields) > limits.fields + 4:  # (+ the four pseudo-fields)
        raise BadHead("Too many header fields", status=431)
    pseudo: dict = {}
    headers = CIMultiDict()
    raw = []
    cookies = []
    for name, value in fields:
        if len(name) + len(value) + 2 > limits.field_size:
            raise BadHead("Header field too large", status=431)
        if name[:1] == b":":
            pseudo[name.decode("latin-1")] = value.decode("latin-1")
        elif name == b"cookie":
            cookies.append(value)
        else:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
            raw.append((name, value))
    if cookies:
        cookie = b"; ".join(cookies)
        headers.add("Cookie", cookie.decode("latin-1"))
        raw.append((b"cookie", cookie))
    return pseudo, headers, raw


def _content_length(headers: CIMultiDict) -> int | None:
    values = headers.getall("Content-Length", ())
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].isascii() or not values[0].isdigit():
        raise BadHead("Invalid Content-Length")
    return int(values[0])
