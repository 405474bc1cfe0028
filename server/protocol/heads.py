"""Response heads of every app kind: checked and serialised once, then reused.

    (status, reason, fields, HEAD?, version, keep-alive, sized?) ──► HeadCache
        miss: ResponseWriter.head() (every check: status line, CR/LF/NUL, token
              names, hop-by-hop fields, Content-Length, framing)
        hit:  the same bytes again with the current Date

Apps send the same few heads again and again. The writer's bytes and its framing
decisions are kept under a key made of exactly what they depend on; a later
response with equal values gets them back without any check. The fields in the
key are the app's own pairs, of ``str`` (WSGI, native) or ``bytes`` (ASGI: the
caller passes a ``normalise`` that turns them into ``str`` pairs on a miss, with
its own checks). Pairs that are not hashable are not cached.

A *sized* head takes its Content-Length from the whole body it is sent with (a
body the app knows but did not declare): its bytes are made per response with
that length, so responses of every size share one cached head.

The body pieces that follow a head are framed by the writer's ``BodyFraming``.
"""

from http import HTTPStatus

from . import writer
from .caches import remember
from .compiled import compiled
from .writer import BodyFraming, ResponseWriter, http_date, parse_status, server_and_date

CACHE_SIZE = 256  # heads kept; the cache is emptied when it is full


class Head:
    """One serialised head and the framing it implies."""

    __slots__ = ("status", "reason", "headers", "length", "chunked", "no_body", "keep_alive",
                 "whole_length", "sized", "_server", "_prefix", "_suffix", "_date", "_bytes")

    def __init__(self, status: int, reason: str, headers: list, writer: ResponseWriter, data: bytes, sized: bool):
        self.status = status
        self.reason = reason
        self.headers = headers  # (str, str) pairs, for the access log and the hooks
        self.length = writer.length
        self.chunked = writer.chunked
        self.no_body = writer.no_body
        self.keep_alive = writer.keep_alive
        self.sized = sized
        # The size of a body that completes the response in one piece, unframed
        # (its declared Content-Length), or -1 when a body goes through BodyFraming.
        self.whole_length = -1 if writer.length is None or writer.no_body or sized else writer.length
        self._server = writer.server
        self._prefix = self._suffix = self._date = None
        self._bytes = data

    def split(self, data: bytes) -> bool:
        """Find where the head changes per response (the Date, and the Content-Length of a
        sized head) so it can be reused; False if the bytes are not as expected."""
        date = http_date()
        start = data.rfind(b"\r\nContent-Length: ") if self.sized else data.rfind(b"\r\nDate: ")
        line_end = data.find(b"\r\nDate: " + date + b"\r\n", start)
        if start < 0 or line_end < 0:
            return False
        self._prefix = data[:start + 2]
        self._suffix = data[line_end + len(date) + 10:]
        self._date = date
        return True

    def bytes(self, size: int = 0) -> bytes:
        """The head with the current Date (and a sized head with ``size`` as its length)."""
        if self.sized:
            return b"%sContent-Length: %d\r\n%s%s" % (self._prefix, size, server_and_date(self._server),
                                                     self._suffix)
        date = http_date()
        if date is not self._date:
            self._date = date
            self._bytes = b"%sDate: %s\r\n%s" % (self._prefix, date, self._suffix)
        return self._bytes

    def framing(self, size: int = 0) -> BodyFraming:
        length = size if self.sized else self.length
        return BodyFraming(length, self.chunked, self.no_body, self.keep_alive)


STATUS_LINE = "<the status is a status line>"  # (a reason no status line can be: see HeadCache.head)


class HeadCache:
    __slots__ = ("server", "cache")

    def __init__(self, server: bytes = b""):
        self.server = server
        self.cache: dict = {}  # key -> Head (read directly by ResponseChannel.response_head)

    def head(self, status, reason, fields, method: str, version: tuple, keep_alive: bool,
             body_size: int | None = None, normalise=None) -> tuple[Head, bytes]:
        """``(Head, its bytes)``; raises on anything the writer refuses (or ``normalise`` does).

        ``reason`` None is the status's standard phrase; ``STATUS_LINE``: ``status`` is a
        whole status line (WSGI's "200 OK"), split once for its head in the cache, not at
        each response (``parse_status`` refuses a bad one). ``body_size`` is the size of
        the whole body when it is known now; the head is then sized unless the app
        declared a Content-Length of its own."""
        key = (status, reason, fields, method == "HEAD", version, keep_alive, body_size is not None)
        try:
            head = self.cache.get(key)
        except TypeError:  # unhashable fields: checked (or refused) on every use
            return self._build(None, status, reason, fields, method, version, keep_alive, body_size, normalise)
        if head is None:
            return self._build(key, status, reason, fields, method, version, keep_alive, body_size, normalise)
        return head, head.bytes(body_size or 0)

    def _build(self, key, status, reason, fields, method, version, keep_alive, body_size,
               normalise) -> tuple[Head, bytes]:
        headers = list(fields) if normalise is None else normalise(fields)
        if reason is STATUS_LINE:
            status, reason = parse_status(status)
        elif reason is None:
            reason = standard_reason(status)
        writer = ResponseWriter(method, version, keep_alive, self.server)
        data = writer.head(status, reason, headers, body_size)  # raises on an unsafe head
        sized = body_size is not None and writer.length == body_size and not _declares_length(headers)
        head = Head(status, reason, headers, writer, data, sized)
        if key is not None and head.split(data):
            remember(self.cache, key, head, CACHE_SIZE)
        return head, data


def cached_head_py(cache: dict, status, reason, fields, is_head: bool, version: tuple, keep_alive: bool,
                   body_size: int | None):
    """``(Head, its bytes)`` of the head ``cache`` (a ``HeadCache.cache``) holds for these, or
    None; raises TypeError for fields that cannot be in a key. ``HeadCache.head``'s hit, for
    the callers that make the key themselves (the reference of the compiled ``cached_head``)."""
    head = cache.get((status, reason, fields, is_head, version, keep_alive, body_size is not None))
    if head is None:
        return None
    return head, head.bytes(body_size or 0)


cached_head = compiled("cached_head")
if cached_head is None:
    cached_head = cached_head_py
else:
    compiled("set_response_head_type")(Head, writer._date_cache, http_date)


def _declares_length(headers) -> bool:
    return any(name.lower() == "content-length" for name, _ in headers)


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def standard_reason(status) -> str:
    """The standard reason phrase of ``status`` ("" for a code without one)."""
    return _REASONS.get(status, "")
