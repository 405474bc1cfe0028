"""Responses of the native web layer: ``StreamResponse``, ``Response``, ``json_response``.

    handler ──prepare()──► channel.response_head ──► channel.send_response ──► await drain()
            ──write(data)─► [compressor] ──► channel.send_body ──► await drain()
            ──write_eof()─► [compressor tail] ──► channel.end_response
    Response: head and whole body in one channel.send_response (send_whole)

A ``StreamResponse`` sends its head when prepared and every ``write`` right away,
then waits for the transport to take more (``drain``): a slow client pauses the
handler instead of growing memory. After the client went away, ``write`` raises
``ConnectionResetError``. Framing (Content-Length, chunked, close-delimited), the
header checks (CR, LF, NUL, hop-by-hop: a 500 instead of the wire) and the head
cache are the connection's (``server.protocol.response``), shared by every app kind.
"""

import datetime
import json
import math
from operator import attrgetter
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.cookies import SimpleCookie

from multidict import CIMultiDict, istr

from server.protocol.server import answer_whole
from server.protocol.writer import parse_status

from .compression import ResponseCompressor, compress_whole, negotiate


_REASONS = {status.value: status.phrase for status in HTTPStatus}
# Header names as multidict's own case-insensitive strings: found without folding their case.
CONTENT_TYPE = istr("Content-Type")
CONTENT_LENGTH = istr("Content-Length")


def _reason_for(status: int) -> str:
    return _REASONS.get(status, "")


def parse_content_type(value: str) -> tuple[str, dict]:
    """``"text/html; charset=UTF-8"`` → ``("text/html", {"charset": "UTF-8"})``."""
    mime, *params = value.split(";")
    result = {}
    for param in params:
        key, sep, val = param.strip().partition("=")
        if sep:
            result[key.strip().lower()] = val.strip().strip('"')
    return mime.strip().lower(), result


class StreamResponse:
    """A response whose body the handler writes piece by piece."""

    _writes_head_on_prepare = True

    # Per-response state, class-level until it changes (most responses never touch it).
    _cookies: SimpleCookie | None = None  # created when a cookie is set
    _chunked = False
    _compression = False
    _compression_force: str | None = None
    _coding: str | None = None
    _compressor: ResponseCompressor | None = None
    _keep_alive: bool | None = None
    _cut = False  # the body was longer than its Content-Length: the rest is dropped

    def __init__(self, *, status: int = 200, reason: str | None = None, headers=None):
        self._set_up(status, reason, headers)

    def _set_up(self, status, reason, headers) -> None:
        """What every response starts with (positional: subclasses call it per response)."""
        # Set when the response is sent, but set now: attributes first set later make the
        # instance dict give up its shared keys, which costs more than setting them here.
        self._protocol = None  # the connection (channel) it is sent on, once prepared
        self._head = None  # heads.Head, once prepared
        self._eof_sent = False
        self._headers = CIMultiDict(headers) if headers else CIMultiDict()
        if reason is None and type(status) is int and status in _REASONS:
            self._status = status
            self._reason = _REASONS[status]
        else:
            self.set_status(status, reason)

    def __repr__(self) -> str:
        state = "eof" if self._eof_sent else "prepared" if self.prepared else "not prepared"
        return f"<{type(self).__name__} {self._status} {self._reason} {state}>"

    def __bool__(self) -> bool:
        return True

    # -- status and headers --------------------------------------------------

    status = property(attrgetter("_status"), doc="The status code (``set_status`` changes it).")
    reason = property(attrgetter("_reason"), doc="The reason phrase sent with the status.")

    def set_status(self, status: int, reason: str | None = None) -> None:
        if self.prepared:
            raise RuntimeError("Cannot change the status of a prepared response")
        status = int(status)
        if reason is None:
            reason = _reason_for(status)
        elif "\r" in reason or "\n" in reason or "\x00" in reason:
            raise ValueError("Reason cannot contain \\r, \\n or \\0")
        self._status = status
        self._reason = reason

    @property
    def headers(self) -> CIMultiDict:
        return self._headers

    @property
    def content_type(self) -> str:
        return parse_content_type(self._headers.get(CONTENT_TYPE, "application/octet-stream"))[0]

    @content_type.setter
    def content_type(self, value: str) -> None:
        self._set_content_type(str(value), self.charset)

    @property
    def charset(self) -> str | None:
        if CONTENT_TYPE not in self._headers:
            return None
        return parse_content_type(self._headers[CONTENT_TYPE])[1].get("charset")

    @charset.setter
    def charset(self, value: str | None) -> None:
        mime = self.content_type
        if mime == "application/octet-stream" and value is not None:
            raise RuntimeError("Setting charset for application/octet-stream doesn't make sense, "
                               "set content_type first")
        self._set_content_type(mime, value)

    def _set_content_type(self, mime: str, charset: str | None) -> None:
        self._headers[CONTENT_TYPE] = f"{mime}; charset={charset.lower()}" if charset else mime

    @property
    def content_length(self) -> int | None:
        value = self._headers.get(CONTENT_LENGTH)
        return int(value) if value is not None else None

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        if value is None:
            self._headers.pop(CONTENT_LENGTH, None)
            return
        if self._chunked:
            raise RuntimeError("Content-Length cannot be set with chunked encoding")
        self._headers[CONTENT_LENGTH] = str(int(value))

    @property
    def last_modified(self) -> datetime.datetime | None:
        value = self._headers.get("Last-Modified")
        if value is None:
            return None
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None

    @last_modified.setter
    def last_modified(self, value) -> None:
        if value is None:
            self._headers.pop("Last-Modified", None)
            return
        if isinstance(value, (int, float)):
            value = datetime.datetime.fromtimestamp(math.ceil(value), datetime.timezone.utc)
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.timezone.utc)
            value = format_datetime(value.astimezone(datetime.timezone.utc), usegmt=True)
        self._headers["Last-Modified"] = str(value)

    # -- cookies ---------------------------------------------------------------

    @property
    def cookies(self) -> SimpleCookie:
        if self._cookies is None:
            self._cookies = SimpleCookie()
        return self._cookies

    def set_cookie(self, name: str, value: str, *, expires=None, domain=None, max_age=None, path="/",
                   secure=None, httponly=None, samesite=None) -> None:
        jar = self.cookies
        morsel = jar.get(name)
        if morsel is not None and morsel.coded_value == "":
            jar.pop(name)  # a deleted cookie being set again
        jar[name] = value
        morsel = jar[name]
        for key, val in (("expires", expires), ("domain", domain), ("max-age", max_age), ("path", path),
                         ("secure", secure), ("httponly", httponly), ("samesite", samesite)):
            if val is not None and val is not False:
                morsel[key] = str(val) if key == "max-age" else val

    def del_cookie(self, name: str, *, domain=None, path="/") -> None:
        self.cookies.pop(name, None)
        self.set_cookie(name, "", max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT", domain=domain, path=path)

    # -- framing options ---------------------------------------------------------

    @property
    def chunked(self) -> bool:
        return self._chunked

    def enable_chunked_encoding(self) -> None:
        if CONTENT_LENGTH in self._headers:
            raise RuntimeError("Chunked encoding cannot be used with a Content-Length")
        self._chunked = True

    @property
    def compression(self) -> bool:
        return self._compression

    def enable_compression(self, force: str | None = None) -> None:
        """Compress the body: ``force`` "gzip"/"deflate", or negotiated from Accept-Encoding."""
        if force is not None and force not in ("gzip", "deflate", "identity"):
            raise ValueError(f"Unknown content coding {force!r}")
        self._compression = True
        self._compression_force = force

    @property
    def keep_alive(self) -> bool | None:
        if self._head is not None:
            return self._head.keep_alive
        return self._keep_alive

    def force_close(self) -> None:
        self._keep_alive = False

    @property
    def prepared(self) -> bool:
        return self._head is not None

    @property
    def body_length(self) -> int:
        """Body bytes sent so far (after compression)."""
        return self._sent

    _sent = 0

    # -- sending -------------------------------------------------------------------

    async def prepare(self, request):
        """Send the head (a ``Response`` sends it with its body)."""
        if self._head is not None:
            return self._head
        if self._eof_sent:
            raise RuntimeError("Response already finished")
        request.claim_response(self)
        for callback in request.app.on_response_prepare:
            await callback(request, self)
        head, data = self._build_head(request)
        if self._writes_head_on_prepare:
            self._check_open()
            self._protocol.send_response(head, data, size=self._body_size() or 0)
            await self._protocol.drain()
        else:
            self._pending_head = data
        return head

    def _build_head(self, request) -> tuple:
        """The head through the connection's one head path (raises on an unsafe one)."""
        protocol = request.protocol
        head = request.head
        if self._chunked and head.version < (1, 1):
            raise RuntimeError(f"Using chunked encoding is forbidden for HTTP/{head.version[0]}.{head.version[1]}")
        code, reason = self._status, self._reason
        if _REASONS.get(code) != reason or code < 100 or code > 999:
            code, reason = parse_status(f"{code} {reason}")  # refuses anything that could split the head
        if self._compression:
            self._start_compression(request)
        size = self._body_size()
        fields = self._header_fields(head.method, size)
        response, data = protocol.response_head(head, code, reason, fields, size, self._keep_alive is False)
        self._protocol = protocol
        self._head = response
        return response, data

    def _header_fields(self, method: str, size: int | None) -> tuple:
        """The head's fields; ``size``: a whole body's, which a HEAD answer declares."""
        headers = self._headers
        status = self._status
        with_body = status >= 200 and status != 204 and status != 304
        if with_body and CONTENT_TYPE not in headers:
            headers[CONTENT_TYPE] = "application/octet-stream"
        fields = tuple(headers.items())
        if self._cookies:
            fields += tuple(("Set-Cookie", morsel.OutputString()) for morsel in self._cookies.values())
        if size is not None and method == "HEAD" and with_body and CONTENT_LENGTH not in headers:
            fields += (("Content-Length", str(size)),)  # the length a GET would get
        return fields

    def _body_size(self) -> int | None:
        return None

    def _start_compression(self, request) -> None:
        if request.head.method == "HEAD" or self._status in (204, 304):
            return
        coding = self._compression_force
        if coding is None:
            coding = negotiate(request.headers.get("Accept-Encoding", ""))
        if coding in (None, "identity"):
            return
        self._coding = coding
        self._headers["Content-Encoding"] = coding
        if "Accept-Encoding" not in self._headers.get("Vary", ""):
            self._headers.add("Vary", "Accept-Encoding")
        self._headers.pop(CONTENT_LENGTH, None)
        self._compressor = ResponseCompressor(coding)

    async def write(self, data) -> None:
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._head is None:
            raise RuntimeError("Cannot call write() before prepare()")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be bytes-like, not {type(data).__name__}")
        data = bytes(data)
        if self._compressor is not None and data:
            data = self._compressor.compress(data)
        if data and not self._cut:
            self._check_open()
            self._write_body(data, False)
        await self._protocol.drain()

    async def drain(self) -> None:
        if self._protocol is not None:
            await self._protocol.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:
            return
        if self._head is None:
            raise RuntimeError("Cannot call write_eof() before prepare()")
        if data:
            await self.write(data)
        tail = self._compressor.finish() if self._compressor is not None else b""
        self._eof_sent = True
        if self._cut:
            return  # the connection ended the response when it cut the body
        self._check_open()
        self._write_body(tail, True)
        await self._protocol.drain()

    def _write_body(self, data: bytes, end: bool) -> None:
        protocol = self._protocol
        framing = protocol.framing
        before = framing.sent
        protocol.send_body(data, end)
        self._sent += framing.sent - before
        self._cut = framing.truncated

    def _check_open(self) -> None:
        transport = self._protocol.transport
        if transport is None or transport.is_closing():
            # is_closing(): a failed write closes the transport before connection_lost runs
            raise ConnectionResetError("Cannot write: the client disconnected")


class Response(StreamResponse):
    """A response with its whole body known: sent with its length, head and body together."""

    _writes_head_on_prepare = False
    _pending_head = b""

    def __init__(self, *, body=None, status: int = 200, reason: str | None = None, text: str | None = None,
                 headers=None, content_type: str | None = None, charset: str | None = None):
        if body is not None and text is not None:
            raise ValueError("body and text are not allowed together")
        self._set_up(status, reason, headers)
        self._body: bytes | None = None
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"text argument must be str, not {type(text).__name__}")
            if CONTENT_TYPE not in self._headers or content_type or charset:
                self._set_content_type(content_type or "text/plain", charset or "utf-8")
            self._body = text.encode(charset or self.charset or "utf-8")
        else:
            if content_type is not None or charset is not None:
                self._set_content_type(content_type or "application/octet-stream", charset)
            if type(body) is bytes:
                self._body = body
            elif body is not None:
                self.body = body

    @property
    def body(self) -> bytes | None:
        return self._body

    @body.setter
    def body(self, value) -> None:
        if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"body argument must be bytes-like, not {type(value).__name__}")
        self._body = bytes(value) if value is not None else None

    @property
    def text(self) -> str | None:
        if self._body is None:
            return None
        return self._body.decode(self.charset or "utf-8")

    @text.setter
    def text(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"text argument must be str, not {type(value).__name__}")
        if CONTENT_TYPE not in self._headers:
            self._set_content_type("text/plain", "utf-8")
        self._body = value.encode(self.charset or "utf-8")

    @property
    def content_length(self) -> int | None:
        if CONTENT_LENGTH in self._headers:
            return int(self._headers[CONTENT_LENGTH])
        return len(self._body) if self._body is not None else 0

    @content_length.setter
    def content_length(self, value) -> None:
        raise RuntimeError("Content-Length of a Response is set from its body")

    def _start_compression(self, request) -> None:
        super()._start_compression(request)
        if self._compressor is not None:
            self._compressor = None  # the whole body is compressed at once, with its length
            self._body = compress_whole(self._body or b"", self._coding)

    def _body_size(self) -> int:
        return len(self._body or b"")

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:
            return
        if self._head is None:
            raise RuntimeError("Cannot call write_eof() before prepare()")
        self._check_open()
        head, self._pending_head = self._pending_head, b""
        self._send_whole(head)
        await self._protocol.drain()

    def send_whole(self, request) -> bool:
        """Prepare and finish in one go, with no coroutine: the common case of a handler's
        Response (the web layer checks that no ``on_response_prepare`` callback waits).
        True: the transport is paused (``await drain()``)."""
        request._response = self  # (the caller saw no response claimed before)
        if self._compression or self._chunked or self._keep_alive is not None or \
                _BODY_REASONS.get(self._status) != self._reason:
            head, data = self._build_head(request)
        else:  # _build_head and _header_fields inline, for a plain Response (about 1% of a request)
            headers = self._headers
            if CONTENT_TYPE not in headers:  # (a status with a body: see the test above)
                headers[CONTENT_TYPE] = "application/octet-stream"
            fields = tuple(headers.items())
            if self._cookies:
                fields += tuple(("Set-Cookie", morsel.OutputString()) for morsel in self._cookies.values())
            size = len(self._body or b"")
            head = request.head
            if head.method == "HEAD" and CONTENT_LENGTH not in headers:
                fields += (("Content-Length", str(size)),)
            protocol = self._protocol = request.protocol
            self._head, data = protocol.response_head(head, self._status, self._reason, fields, size)
        return self._send_whole(data)

    def _send_whole(self, data: bytes) -> bool:
        self._eof_sent = True
        body = self._body or b""
        protocol = self._protocol
        if answer_whole is not None:  # (send_response of a whole answer, compiled: server.py)
            wait = answer_whole(protocol, self._head, data, body, len(body))
        else:
            wait = protocol.send_response(self._head, data, body, True, len(body))
        framing = protocol.framing
        self._sent = len(body) if framing is None else framing.sent
        self._cut = framing is not None and framing.truncated
        return wait



_BODY_REASONS = {status: reason for status, reason in _REASONS.items() if status >= 200 and status not in (204, 304)}

_NO_DATA = object()


def json_response(data=_NO_DATA, *, text: str | None = None, body=None, status: int = 200,
                  reason: str | None = None, headers=None, content_type: str = "application/json",
                  dumps=json.dumps) -> Response:
    if data is not _NO_DATA:
        if text is not None or body is not None:
            raise ValueError("only one of data, text, or body should be specified")
        text = dumps(data)
    return Response(text=text, body=body, status=status, reason=reason, headers=headers,
                    content_type=content_type)
