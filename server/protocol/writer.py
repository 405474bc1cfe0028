"""Response serialisation (sans-IO): status, headers and body pieces in, bytes out.

One ``ResponseWriter`` per request decides the response framing once, when the
head is built, and every body piece then goes through it:

* no body at all for HEAD requests and 1xx/204/304 responses;
* the application's Content-Length is kept and enforced: a longer body is cut
  (``truncated``), a shorter one leaves ``complete`` False so the connection
  is closed rather than reused;
* otherwise a body whose size is known when the head is built gets a
  Content-Length; an HTTP/1.1 client gets chunked encoding; an HTTP/1.0
  client gets a body delimited by closing the connection.

Header names and values handed over by an application are checked so that
they cannot split the response (CR, LF, NUL); ``ResponseHeaderError`` (500).
The writer can run on any thread: it touches no socket.
"""

import re
import time
from email.utils import formatdate

from .caches import remember
from .errors import ResponseHeaderError
from .grammar import token as _token

_BAD_VALUE = re.compile(r"[^\t\x20-\x7e\x80-\xff]")  # CTLs, DEL and anything beyond latin-1
_STATUS = re.compile(r"([1-9][0-9]{2}) ([\t\x20-\x7e\x80-\xff]*)")

HOP_BY_HOP = frozenset(
    "connection keep-alive proxy-authenticate proxy-authorization te trailers "
    "transfer-encoding upgrade".split()
)

_date_cache = [0, b"", {}]  # second, its Date value, server header -> "Server: ...Date: ..." lines

# Apps send the same few fields and statuses again and again; each is checked and
# encoded once. ``_line_cache`` maps a (name, value) field to its header line, or
# to its length for a Content-Length field, or to b"" for a field the writer drops
# (Date, Server). Both caches are emptied when full.
_line_cache: dict = {}
_status_cache: dict = {}
LINE_CACHE_SIZE = 512


def http_date() -> bytes:
    """The Date header value, formatted once per second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode("ascii")
        _date_cache[2] = {}
    return _date_cache[1]


def server_and_date(server: bytes) -> bytes:
    """The Server (if any) and Date header lines, built once per second."""
    date = http_date()
    lines = _date_cache[2].get(server)
    if lines is None:
        lines = (b"Server: %s\r\n" % server if server else b"") + b"Date: %s\r\n" % date
        _date_cache[2][server] = lines
    return lines


def parse_status(status: str) -> tuple[int, str]:
    """Split ``"200 OK"`` into (200, "OK"), refusing anything that could split the line."""
    try:
        parsed = _status_cache.get(status)
    except TypeError:  # not hashable: refused below
        parsed = None
    if parsed is not None:
        return parsed
    m = _STATUS.fullmatch(status) if isinstance(status, str) else None
    if m is None:
        raise ResponseHeaderError(f"Invalid status line: {status!r}")
    return remember(_status_cache, status, (int(m.group(1)), m.group(2)), LINE_CACHE_SIZE)


def check_header(name: str, value: str) -> None:
    if not isinstance(name, str) or _token.fullmatch(name.encode("latin-1", "replace")) is None:
        raise ResponseHeaderError(f"Invalid response header name: {name!r}")
    if not isinstance(value, str) or _BAD_VALUE.search(value):
        raise ResponseHeaderError(f"Invalid response header value for {name}: {value!r}")


def bodiless(method: str, status: int) -> bool:
    return method == "HEAD" or status < 200 or status in (204, 304)


class BodyFraming:
    """The body framing of one response, once its head is decided: a declared
    Content-Length is enforced (a longer body is cut: ``truncated``; a shorter one
    leaves ``complete`` False and closes the connection), an unsized HTTP/1.1 body
    is chunked, and a response without a body (HEAD, 1xx, 204, 304) sends none."""

    __slots__ = ("length", "chunked", "no_body", "keep_alive", "sent", "truncated")

    def __init__(self, length: int | None, chunked: bool, no_body: bool, keep_alive: bool):
        self.length = length  # declared Content-Length, or None
        self.chunked = chunked
        self.no_body = no_body
        self.keep_alive = keep_alive  # False: the connection closes after this response
        self.sent = 0  # body bytes written
        self.truncated = False

    def body(self, data: bytes) -> bytes:
        """Frame one piece of body; may cut it to the declared length."""
        if self.no_body or not data:
            return b""
        if self.length is not None:
            room = self.length - self.sent
            if len(data) > room:
                self.truncated = True
                data = data[:room]
            self.sent += len(data)
            return data
        self.sent += len(data)
        if self.chunked:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def pieces(self, pieces: list, size: int) -> list:
        """Frame pieces of body (``size`` bytes in all) as they are, with no copy: one chunk
        for them all when chunked. Past the declared length they are joined and cut."""
        if self.no_body or not size:
            return []
        if self.length is not None and size > self.length - self.sent:
            return [self.body(b"".join(pieces))]
        self.sent += size
        if self.chunked:
            return [b"%x\r\n" % size, *pieces, b"\r\n"]
        return pieces

    def finish(self) -> bytes:
        """The bytes that end the body; marks the connection for closing if it is short."""
        if not self.complete:
            self.keep_alive = False
        if self.chunked:
            return b"0\r\n\r\n"
        return b""

    @property
    def complete(self) -> bool:
        return self.no_body or self.length is None or self.sent == self.length


class ResponseWriter(BodyFraming):
    """Frames one response. ``keep_alive`` ends up False if the connection must close."""

    __slots__ = ("method", "version", "server", "status", "head_sent", "headers")

    def __init__(self, method: str, version: tuple[int, int], keep_alive: bool, server: bytes = b""):
        self.method = method
        self.version = version
        self.keep_alive = keep_alive
        self.server = server
        self.status = 0
        self.chunked = False
        self.length: int | None = None  # declared Content-Length
        self.sent = 0  # body bytes written
        self.head_sent = False
        self.no_body = False
        self.truncated = False
        self.headers: list[tuple[str, str]] = []

    def head(self, status: int, reason: str, headers: list[tuple[str, str]], body_size: int | None = None) -> bytes:
        """Serialise the head; ``body_size`` is the whole body's size when known now."""
        self.status = status
        self.headers = headers
        self.no_body = bodiless(self.method, status)
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1"))]
        length = None
        for field in headers:
            try:
                line = _line_cache.get(field)
            except TypeError:  # not hashable: checked (and refused) below
                line = None
            if line is None:
                line = _switching_line(field) if status == 101 else _header_line(field)
            if type(line) is int:  # a Content-Length: written below, once, unless the status forbids it
                if length is not None and length != line:
                    raise ResponseHeaderError(f"Invalid Content-Length from the application: {field[1]!r}")
                length = line
            else:
                lines.append(line)
        if length is None and body_size is not None and not self.no_body:
            length = body_size
        if status < 200 or status == 204:
            length = None  # RFC 9110 s8.6: a server MUST NOT send Content-Length here
        self.length = length
        if length is not None:
            lines.append(b"Content-Length: %d\r\n" % length)
        elif not self.no_body:
            if self.version >= (1, 1):
                self.chunked = True
                lines.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False  # the body ends when the connection does
        lines.append(server_and_date(self.server))
        if not self.keep_alive:
            lines.append(b"Connection: close\r\n\r\n")
        elif self.version < (1, 1):
            lines.append(b"Connection: keep-alive\r\n\r\n")
        else:
            lines.append(b"\r\n")
        self.head_sent = True
        return b"".join(lines)


def _header_line(field) -> bytes | int:
    """Check an application's (name, value) field; its line, its length (Content-Length)
    or b"" (a field the writer sets itself). Remembered in ``_line_cache``."""
    name, value = field
    check_header(name, value)
    lname = name.lower()
    if lname in HOP_BY_HOP:
        raise ResponseHeaderError(f"Hop-by-hop header not allowed: {name}")
    if lname == "content-length":
        if not value.isascii() or not value.isdigit():
            raise ResponseHeaderError(f"Invalid Content-Length from the application: {value!r}")
        line = int(value)
    elif lname in ("date", "server"):
        line = b""  # ours are authoritative
    else:
        line = b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1"))
    return remember(_line_cache, (name, value), line, LINE_CACHE_SIZE)


def _switching_line(field) -> bytes | int:
    """A field of a 101 response: its Upgrade and Connection fields say what the
    connection switches to (RFC 9110 s15.2.2), the only place they are the app's."""
    name, value = field
    if isinstance(name, str) and name.lower() in ("upgrade", "connection"):
        check_header(name, value)
        return b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1"))
    return _header_line(field)


def continue_response() -> bytes:
    return b"HTTP/1.1 100 Continue\r\n\r\n"


def error_response(status: int, reason: str, message: str, server: bytes, close: bool, headers=None) -> bytes:
    """A small plain-text error response, always with its length."""
    body = (message + "\n").encode("utf-8")
    writer = ResponseWriter("GET", (1, 1), not close, server)
    fields = [("Content-Type", "text/plain; charset=utf-8"), *(headers or ())]
    head = writer.head(status, reason, fields, len(body))
    return head + body
