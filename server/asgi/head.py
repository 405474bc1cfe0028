"""Response heads of ASGI apps, checked and serialised once, then reused.

    http.response.start ──(status, headers, HEAD?, version, keep-alive)──► HeadCache
        miss: status_of() + header_pairs() + ResponseWriter.head()  (every check)
        hit:  the same bytes again, with the current Date

Apps send the same few heads again and again (a status, a content type, often a
fixed Content-Length). The first time, a head goes through every check of
``messages`` and of the core writer (CR/LF/NUL, token names, hop-by-hop fields,
Content-Length); the writer's bytes and its framing decisions are kept under a
key made of exactly what they depend on. A later message with equal values
gets them back with only a type check of its fields; anything else (a new
value, a header list of another type, unhashable pairs) takes the full path.

The body pieces that follow a head are framed by the writer's ``BodyFraming``.
"""

from server.protocol.caches import remember
from server.protocol.writer import BodyFraming, ResponseWriter, http_date

from .fields import bytes_pairs
from .messages import header_pairs, status_of

CACHE_SIZE = 256  # heads kept; the cache is emptied when it is full


class Head:
    """One serialised head and the framing it implies."""

    __slots__ = ("status", "reason", "headers", "length", "chunked", "no_body", "keep_alive",
                 "whole_length", "_prefix", "_suffix", "_date", "_bytes")

    def __init__(self, status: int, reason: str, headers: list, writer: ResponseWriter, data: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers  # (str, str) pairs, for the access log
        self.length = writer.length
        self.chunked = writer.chunked
        self.no_body = writer.no_body
        self.keep_alive = writer.keep_alive
        # The size of a body that completes the response in one piece, unframed
        # (its declared Content-Length), or -1 when a body goes through BodyFraming.
        self.whole_length = -1 if writer.length is None or writer.no_body else writer.length
        self._prefix = self._suffix = self._date = None
        self._bytes = data

    def split_date(self, data: bytes) -> bool:
        """Find the Date line in ``data`` so the head can be reused later; False if it is not there."""
        date = http_date()
        line = b"\r\nDate: " + date + b"\r\n"
        at = data.rfind(line)
        if at < 0:
            return False
        self._prefix = data[:at + 2]
        self._suffix = data[at + len(line):]
        self._date = date
        return True

    def bytes(self) -> bytes:
        """The head with the current Date."""
        date = http_date()
        if date is not self._date:
            self._date = date
            self._bytes = b"%sDate: %s\r\n%s" % (self._prefix, date, self._suffix)
        return self._bytes

    def framing(self) -> BodyFraming:
        return BodyFraming(self.length, self.chunked, self.no_body, self.keep_alive)


class HeadCache:
    __slots__ = ("server", "_heads")

    def __init__(self, server: bytes = b""):
        self.server = server
        self._heads: dict = {}

    def head(self, message: dict, method: str, version: tuple, keep_alive: bool) -> tuple[Head, bytes]:
        """``(Head, its bytes)`` for an ``http.response.start`` message; raises on anything invalid."""
        status = message.get("status")
        raw = message.get("headers")
        # Pairs of exactly bytes only: a memoryview compares (and hashes) equal to
        # bytes, and would otherwise find the head of checked bytes.
        fields = bytes_pairs(raw)
        if type(status) is int and fields is not None:
            key = (status, fields, method == "HEAD", version, keep_alive)
            head = self._heads.get(key)
            if head is not None:
                return head, head.bytes()
            return self._build(message, status, fields, method, version, keep_alive, key)
        return self._build(message, status, raw, method, version, keep_alive, None)

    def _build(self, message, status, raw, method, version, keep_alive, key) -> tuple[Head, bytes]:
        status, reason = status_of(message)
        headers = header_pairs(raw)
        writer = ResponseWriter(method, version, keep_alive, self.server)
        data = writer.head(status, reason, headers)  # raises on an unsafe header
        head = Head(status, reason, headers, writer, data)
        if key is not None and head.split_date(data):
            remember(self._heads, key, head, CACHE_SIZE)
        return head, data

