"""Incremental HTTP/1.1 request parser: bytes in, events out (sans-IO).

    transport ──bytes──► ServerHttpProtocol ──feed(bytes)──► RequestParser
                                              ◄──[RequestHead, Data..., EndOfMessage]──

The parser has no sockets, no asyncio and no clock: the same bytes give the
same events however they are split, one byte at a time or all at once. It
parses one request at a time. After ``EndOfMessage`` it stops (state DONE) and
keeps any further bytes buffered until the caller, having answered the request,
calls ``next_request()``: pipelined requests are parsed only when their turn
comes, so responses go out in order and a client cannot make us buffer parsed
requests it has not waited for.

Errors are ``HttpError`` exceptions carrying their status (400, 413, 414, 431,
501, 505); after one the parser is unusable and the connection must close.

Most heads are plain: an origin-form target, HTTP/1.0 or 1.1, well-formed fields
within the limits. ``plain_head`` parses those in one pass and declines (None)
any other head, which the full checks then accept or refuse with a precise error.
It is the compiled ``_chead.parse_plain_head`` when that extension is built, else
``plain_head_py``, the reference it must match exactly; ``ASYNCWORKER_PURE_PYTHON=1``
(read at import) forces the latter. When a plain head holds one Host and no other
field that bears on framing, ``simple_head`` (compiled too, with ``simple_head_py``
as its reference) builds the head without the framing checks.
"""

from multidict import CIMultiDict

from . import grammar
from .compiled import compiled
from .errors import (
    BadRequest,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    NotImplementedByServer,
    PayloadTooLarge,
    UriTooLong,
    VersionNotSupported,
)
from .events import Data, EndOfMessage, RequestHead
from .framing import body_framing, connection_tokens, wants_keep_alive
from .limits import Limits

HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS, DONE, ERROR = range(8)

# RFC 9110 s6.5.1: fields a sender must not put in a trailer section (framing,
# routing, request modifiers, authentication, content processing).
FORBIDDEN_TRAILERS = frozenset(
    (
        "authorization cache-control connection content-encoding content-length "
        "content-range content-type expect host keep-alive max-forwards pragma "
        "proxy-authenticate proxy-authorization range te trailer transfer-encoding "
        "upgrade www-authenticate set-cookie"
    ).split()
)

_END_OF_MESSAGE = EndOfMessage()
_VERSIONS = ((1, 0), (1, 1))  # by minor version

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
# A plain head skips ``_build_head`` when these bits of its mask are just SPECIAL_HOST:
# one Host, no field that bears on framing. Not Upgrade, which matters only with a
# Connection field (itself checked), nor one Content-Type: only a second is an error.
_NEEDS_CHECKS = (
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
    on framing: what ``_build_head`` decides for it (keep-alive for HTTP/1.1, no body,
    not chunked, no 100-continue, no upgrade), without its checks. The reference for
    the compiled ``simple_head``."""
    method, target, path, query, minor, raw, pairs, _ = plain
    # Positional, as keywords would double the cost of this call.
    return RequestHead(method, target, path, query, _VERSIONS[minor], CIMultiDict(pairs), raw,
                       minor == 1, 0, False, False, False, False)


plain_head_c = compiled("parse_plain_head")
plain_head = plain_head_c or plain_head_py
simple_head_c = compiled("simple_head")
if simple_head_c is not None:
    compiled("set_head_types")(RequestHead, CIMultiDict, _VERSIONS)
simple_head = simple_head_c or simple_head_py


class RequestParser:
    _plain_head = staticmethod(plain_head)  # a subclass may pick either implementation (tests do)

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self._head_size = limits.head_size  # (Limits is frozen: computed once)
        self._plain_limits = (limits.request_line, limits.field_size, limits.fields)
        # Read them, never write them: the bytes received and not parsed yet, and
        # where the parser is (HEAD ... ERROR). The connection's per-request checks
        # read these two plain attributes (a property costs a call).
        self.buffer = bytearray()
        self.state = HEAD
        self._scan_from = 0  # where to resume looking for the end of the head
        self._remaining = 0  # body bytes left (BODY) or chunk bytes left (CHUNK_DATA)
        self._body_size = 0  # decoded body bytes so far, for the body cap
        self._trailer_lines: list[bytes] = []

    # -- public API -------------------------------------------------------

    @property
    def done(self) -> bool:
        """The current request has been parsed to its end."""
        return self.state == DONE

    @property
    def in_message(self) -> bool:
        """Some of a request has been received but not all of it."""
        state = self.state
        if state == HEAD:
            return bool(self.buffer)
        return state != DONE and state != ERROR

    @property
    def buffered(self) -> int:
        return len(self.buffer)

    def feed(self, data: bytes) -> list:
        """Take more bytes; return the events they complete (maybe none)."""
        if self.state == HEAD and not self.buffer and type(data) is bytes:
            # The common piece: exactly one plain head. Its events are those _run
            # gives, without passing the bytes through the buffer; any other head
            # (a leading empty line, obsolete forms...) takes the buffered path.
            end = data.find(b"\r\n\r\n")
            if 0 < end == len(data) - 4 and end < self._head_size - 3:
                try:
                    head = self._parse_plain_head(data[:end])
                    if head is not None:
                        if not head.has_body:
                            self.state = DONE
                            return [head, _END_OF_MESSAGE]
                        self._start_body(head)  # raises on a body over the cap
                        return [head]
                except Exception:
                    self.state = ERROR
                    raise
        self.buffer += data
        if self.state == DONE:
            return []
        return self._run()

    def next_request(self) -> list:
        """Start on the next pipelined request; return events from buffered bytes."""
        if self.state != DONE:
            raise RuntimeError("the current request is not finished")
        self.state = HEAD
        self._scan_from = 0
        self._body_size = 0
        return self._run() if self.buffer else []

    def detach(self) -> bytes:
        """Give up parsing (the connection switched protocols); return the bytes held."""
        if self.state != DONE:
            raise RuntimeError("the current request is not finished")
        data = bytes(self.buffer)
        self.buffer.clear()
        self.state = ERROR
        return data

    def feed_eof(self) -> None:
        """The peer will send nothing more: raise if a request was cut short."""
        if self.in_message:
            self.state = ERROR
            raise BadRequest("Incomplete request")

    # -- state machine ----------------------------------------------------

    # Each state's step: it takes what it can from the buffer, adds its events and
    # returns False when it needs more bytes. DONE and ERROR have none: the rest of
    # the buffer waits for next_request(). Filled in below the class; looked up once,
    # so a subclass that overrides a step must replace its entry too.
    _STEPS: tuple = ()

    def _run(self) -> list:
        events: list = []
        steps = self._STEPS
        try:
            while self.buffer or self.state in (BODY, CHUNK_DATA):
                step = steps[self.state]
                if step is None or not step(self, events):
                    break
        except Exception:
            self.state = ERROR
            raise
        return events

    def _finish(self, events: list, trailers: CIMultiDict | None = None) -> None:
        events.append(EndOfMessage(trailers) if trailers else _END_OF_MESSAGE)
        self.state = DONE

    # -- head -------------------------------------------------------------

    def _read_head(self, events: list) -> bool:
        """Parse the head once it is all buffered; False while it is not."""
        buf = self.buffer
        # RFC 9112 s2.2: ignore empty lines before the request-line.
        while buf.startswith(b"\r\n"):
            del buf[:2]
        end = buf.find(b"\r\n\r\n", self._scan_from)
        if end < 0:
            self._check_partial_head()
            self._scan_from = max(0, len(buf) - 3)
            return False
        if end + 4 > self._head_size:
            raise HeaderFieldsTooLarge("Request header fields too large")
        block = bytes(buf[:end])
        del buf[: end + 4]
        head = self._parse_head_block(block)
        events.append(head)
        if not head.has_body:
            self._finish(events)
        return True

    def _check_partial_head(self) -> None:
        """Fail early on an unfinished head that can never become valid."""
        buf = self.buffer
        limits = self.limits
        size = len(buf) - buf.endswith(b"\r")  # a lone CR may be the start of CRLF
        last_end = buf.rfind(b"\r\n")
        if last_end < 0:
            if size > limits.request_line:
                raise UriTooLong("Request line too long")
        elif size - last_end > limits.field_size:  # the partial line and its CRLF
            raise HeaderFieldsTooLarge("Header field too large")
        elif buf.count(b"\r\n") > limits.fields + 1:
            raise HeaderFieldsTooLarge("Too many header fields")
        if len(buf) > limits.head_size:
            raise HeaderFieldsTooLarge("Request header fields too large")
        lf = buf.find(b"\n", self._scan_from)
        while lf >= 0:
            if lf == 0 or buf[lf - 1] != 0x0D:
                raise BadRequest("Bare LF in request head")
            lf = buf.find(b"\n", lf + 1)

    def _parse_head_block(self, head: bytes) -> RequestHead:
        parsed = self._parse_plain_head(head)
        if parsed is None:
            parsed = self._parse_any_head(head)
        self._start_body(parsed)
        return parsed

    def _parse_plain_head(self, head: bytes) -> RequestHead | None:
        """The common head, parsed by ``plain_head``; None for any other, which the
        full checks then accept or refuse."""
        plain = self._plain_head(head, *self._plain_limits)
        if plain is None:
            return None
        if plain[7] & _NEEDS_CHECKS == SPECIAL_HOST:
            return simple_head(plain)
        method, target, path, query, minor, raw, pairs, _ = plain
        return _build_head(method, target, path, query, _VERSIONS[minor], CIMultiDict(pairs), raw)

    def _parse_any_head(self, head: bytes) -> RequestHead:
        crlf = head.count(b"\r\n")
        if head.count(b"\n") != crlf:
            raise BadRequest("Bare LF in request head")
        if head.count(b"\r") != crlf:
            raise BadRequest("Bare CR in request head")
        lines = head.split(b"\r\n")
        request_line = lines[0]
        if len(request_line) > self.limits.request_line:
            raise UriTooLong("Request line too long")
        method, target, version = _parse_request_line(request_line)
        headers, raw = self._parse_fields(lines, 1)
        path, query = _split_target(method, target)
        return _build_head(method, target, path, query, version, headers, raw)

    def _parse_fields(self, lines: list[bytes], start: int) -> tuple[CIMultiDict, list]:
        limits = self.limits
        if len(lines) - start > limits.fields:
            raise HeaderFieldsTooLarge("Too many header fields")
        headers: CIMultiDict = CIMultiDict()
        raw = []
        match = grammar.field_line.fullmatch
        for i in range(start, len(lines)):
            line = lines[i]
            if len(line) + 2 > limits.field_size:  # gunicorn counts the CRLF
                raise HeaderFieldsTooLarge("Header field too large")
            m = match(line)
            if m is None:
                raise BadRequest(_field_line_problem(line))
            name, value = m.groups()
            raw.append((name, value))
            headers.add(name.decode("ascii"), value.decode("latin-1"))
        return headers, raw

    # -- body with Content-Length -------------------------------------------

    def _body_data(self, events: list) -> bool:
        if not self.buffer:
            return False
        events.append(Data(self._take_body()))
        if self._remaining == 0:
            self._finish(events)
        return True

    def _take_body(self) -> bytes:
        """Take up to ``_remaining`` buffered body bytes."""
        buf = self.buffer
        n = self._remaining
        if len(buf) <= n:
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        self._remaining -= len(data)
        return data

    # -- chunked body (RFC 9112 s7.1) ----------------------------------------

    def _chunk_size(self, events: list) -> bool:
        buf = self.buffer
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) - buf.endswith(b"\r") > self.limits.chunk_line:
                raise BadRequest("Chunk size line too long")
            if b"\n" in buf:
                raise BadRequest("Bare LF in chunk size line")
            return False
        if end > self.limits.chunk_line:
            raise BadRequest("Chunk size line too long")
        m = grammar.chunk_size_line.fullmatch(buf, 0, end)
        if m is None:
            raise BadRequest("Invalid chunk size line")
        size = int(m.group(1), 16)
        del buf[: end + 2]
        if size == 0:
            self.state = TRAILERS
            self._trailer_lines = []
        else:
            self._add_body_size(size)
            self._remaining = size
            self.state = CHUNK_DATA
        return True

    def _chunk_data(self, events: list) -> bool:
        if not self.buffer:
            return False
        data = self._take_body()
        end = self._remaining == 0
        events.append(Data(data, end))
        if end:
            self.state = CHUNK_CRLF
        return True

    def _chunk_crlf(self, events: list) -> bool:
        buf = self.buffer
        if len(buf) < 2:
            if buf[:1] not in (b"", b"\r"):
                raise BadRequest("Missing CRLF after chunk data")
            return False
        if buf[:2] != b"\r\n":
            raise BadRequest("Missing CRLF after chunk data")
        del buf[:2]
        self.state = CHUNK_SIZE
        return True

    def _trailers(self, events: list) -> bool:
        buf = self.buffer
        limits = self.limits
        while True:
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) - buf.endswith(b"\r") + 2 > limits.field_size:
                    raise HeaderFieldsTooLarge("Trailer field too large")
                if b"\n" in buf:
                    raise BadRequest("Bare LF in trailer section")
                return False
            line = bytes(buf[:end])
            del buf[: end + 2]
            if not line:
                break
            if b"\n" in line or b"\r" in line:  # refuse now, not when the section ends
                raise BadRequest("Bare CR or LF in trailer section")
            self._trailer_lines.append(line)
            if len(self._trailer_lines) > limits.fields:
                raise HeaderFieldsTooLarge("Too many trailer fields")
        trailers = None
        if self._trailer_lines:
            trailers, _ = self._parse_fields(self._trailer_lines, 0)
            forbidden = FORBIDDEN_TRAILERS.intersection(k.lower() for k in trailers)
            if forbidden:
                raise BadRequest(f"Field not allowed in trailers: {sorted(forbidden)[0]}")
        self._trailer_lines = []
        self._finish(events, trailers)
        return True

    def _add_body_size(self, n: int) -> None:
        self._body_size += n
        cap = self.limits.body
        if cap and self._body_size > cap:
            raise PayloadTooLarge("Request body too large")

    def _start_body(self, head: RequestHead) -> None:
        if head.chunked:
            self.state = CHUNK_SIZE
        elif head.content_length:
            self._add_body_size(head.content_length)
            self._remaining = head.content_length
            self.state = BODY


def _by_state(steps: dict) -> tuple:
    """``steps`` as a tuple indexed by state (HEAD ... ERROR), None for a state without one."""
    return tuple(steps.get(state) for state in range(ERROR + 1))


RequestParser._STEPS = _by_state({
    HEAD: RequestParser._read_head,
    BODY: RequestParser._body_data,
    CHUNK_SIZE: RequestParser._chunk_size,
    CHUNK_DATA: RequestParser._chunk_data,
    CHUNK_CRLF: RequestParser._chunk_crlf,
    TRAILERS: RequestParser._trailers,
})


def _parse_request_line(line: bytes) -> tuple[str, str, tuple[int, int]]:
    """``method SP request-target SP HTTP-version``, exactly single spaces."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise BadRequest("Invalid request line")
    method, target, version = parts
    if grammar.token.fullmatch(method) is None:
        raise BadRequest("Invalid method")
    m = grammar.http_version.fullmatch(version)
    if m is None:
        raise BadRequest("Invalid HTTP version")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != 1:
        raise VersionNotSupported(f"HTTP/{major}.{minor} not supported")
    # RFC 9112 s2.3: a higher minor version is understood as the highest we speak.
    return method.decode("ascii"), target.decode("latin-1"), (1, min(minor, 1))


def _split_target(method: str, target: str) -> tuple[str, str]:
    """Return (path, query) after checking the target's form (RFC 9112 s3.2)."""
    raw = target.encode("latin-1")
    if method == "CONNECT":
        raise NotImplementedByServer("CONNECT is not supported by this server")
    if grammar.origin_form.fullmatch(raw):
        path, _, query = target.partition("?")
        return path, query
    if target == "*":
        if method != "OPTIONS":
            raise BadRequest("Asterisk target is only for OPTIONS")
        return "*", ""
    m = grammar.absolute_form.fullmatch(raw)
    if m is None:
        raise BadRequest("Invalid request target")
    rest = (m.group(2) or b"").decode("latin-1")
    path, _, query = rest.partition("?")
    return path or "/", query


def _build_head(method, target, path, query, version, headers, raw) -> RequestHead:
    hosts = headers.getall("Host", ())
    if len(hosts) > 1:
        raise BadRequest("More than one Host header")
    if not hosts and version >= (1, 1):
        raise BadRequest("Missing Host header")
    if len(headers.getall("Content-Type", ())) > 1:
        raise BadRequest("More than one Content-Type header")
    content_length, chunked = body_framing(version, headers)
    tokens = connection_tokens(headers)
    expect_continue = False
    expectations = headers.getall("Expect", ())
    if expectations:
        if any(e.strip(" \t").lower() != "100-continue" for f in expectations for e in f.split(",")):
            raise ExpectationFailed("Unsupported expectation")
        expect_continue = version >= (1, 1)  # RFC 9110 s10.1.1: ignored in HTTP/1.0
    head = RequestHead(
        method=method,
        target=target,
        path=path,
        query=query,
        version=version,
        headers=headers,
        raw_headers=raw,
        keep_alive=wants_keep_alive(version, tokens),
        content_length=content_length,
        chunked=chunked,
        expect_continue=expect_continue,
        upgrade="upgrade" in tokens and "Upgrade" in headers,
        has_body=chunked or bool(content_length),
    )
    return head


def _field_line_problem(line: bytes) -> str:
    if line[:1] in (b" ", b"\t"):
        return "Obsolete line folding is not accepted"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "Header line without a colon"
    if name != name.rstrip(b" \t"):
        return "Whitespace between header name and colon"
    if grammar.token.fullmatch(name) is None:
        return "Invalid header name"
    return "Invalid character in header value"
