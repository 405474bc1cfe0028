"""Reading a request body out of the parser's buffer: Content-Length or chunked.

    buffer ──BODY──────────────────────────────────► Data(bytes) ... EndOfMessage()
    buffer ──CHUNK_SIZE ► CHUNK_DATA ► CHUNK_CRLF ──► Data(bytes, end_of_chunk) ...
             └─size 0─► TRAILERS ──────────────────► EndOfMessage(trailers or None)

``BodyReader`` is the part of ``RequestParser`` that works after the head: each
step takes what it can from the buffer, adds its events and returns False when it
needs more bytes. The decoded body is held to ``limits.body`` (413 past it); a
chunk-size line to ``limits.chunk_line``; trailers to the head's field limits,
and none of the fields that may not be sent in a trailer section.
"""

from multidict import CIMultiDict

from . import grammar
from .errors import BadRequest, HeaderFieldsTooLarge, PayloadTooLarge
from .events import Data, EndOfMessage, RequestHead
from .headreader import parse_field_lines
from .parserstate import BODY, CHUNK_CRLF, CHUNK_DATA, CHUNK_SIZE, DONE, TRAILERS

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

END_OF_MESSAGE = EndOfMessage()  # the one without trailers: every request shares it


class BodyReader:
    """The body states of ``RequestParser``: its ``buffer``, ``state``, ``limits``,
    ``_remaining`` (body bytes left in BODY, chunk bytes left in CHUNK_DATA),
    ``_body_size`` (decoded bytes so far, for the cap) and ``_trailer_lines``."""

    __slots__ = ()  # its state is in the parser's slots (parser.py)

    def _start_body(self, head: RequestHead) -> None:
        if head.chunked:
            self.state = CHUNK_SIZE
            self._scan_from = 0
        elif head.content_length:
            self._add_body_size(head.content_length)
            self._remaining = head.content_length
            self.state = BODY

    def _finish(self, events: list, trailers: CIMultiDict | None = None) -> None:
        events.append(EndOfMessage(trailers) if trailers else END_OF_MESSAGE)
        self.state = DONE

    def _add_body_size(self, n: int) -> None:
        self._body_size += n
        cap = self.limits.body
        if cap and self._body_size > cap:
            raise PayloadTooLarge("Request body too large")

    # -- body with Content-Length -------------------------------------------

    def _body_data(self, events: list) -> bool:
        if not self.buffer:
            return False
        events.append(Data(self._take_body()))
        if self._remaining == 0:
            self._finish(events)
        return True

    def _body_piece(self, data: bytes) -> list:
        """A received piece that is body and nothing else (BODY or CHUNK_DATA, the buffer
        empty): its event carries it as it came, without passing through the buffer."""
        remaining = self._remaining = self._remaining - len(data)
        if self.state == BODY:
            events = [Data(data)]
            if not remaining:
                self._finish(events)
            return events
        if not remaining:
            self.state = CHUNK_CRLF
        return [Data(data, not remaining)]

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
        scan_from = self._scan_from  # the bytes of this line looked at before
        end = buf.find(b"\r\n", scan_from)
        if end < 0:
            size = len(buf) - buf.endswith(b"\r")  # a lone CR may be the start of CRLF
            if size > self.limits.chunk_line:
                raise BadRequest("Chunk size line too long")
            if buf.find(b"\n", scan_from) >= 0:
                raise BadRequest("Bare LF in chunk size line")
            self._scan_from = size
            return False
        if end > self.limits.chunk_line:
            raise BadRequest("Chunk size line too long")
        m = grammar.chunk_size_line.fullmatch(buf, 0, end)
        if m is None:
            raise BadRequest("Invalid chunk size line")
        size = int(m.group(1), 16)
        del buf[: end + 2]
        self._scan_from = 0
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
            end = buf.find(b"\r\n", self._scan_from)  # the bytes of this line looked at before
            if end < 0:
                size = len(buf) - buf.endswith(b"\r")  # a lone CR may be the start of CRLF
                if size + 2 > limits.field_size:
                    raise HeaderFieldsTooLarge("Trailer field too large")
                if buf.find(b"\n", self._scan_from) >= 0:
                    raise BadRequest("Bare LF in trailer section")
                self._scan_from = size
                return False
            line = bytes(buf[:end])
            del buf[: end + 2]
            self._scan_from = 0
            if not line:
                break
            if b"\n" in line or b"\r" in line:  # refuse now, not when the section ends
                raise BadRequest("Bare CR or LF in trailer section")
            self._trailer_lines.append(line)
            if len(self._trailer_lines) > limits.fields:
                raise HeaderFieldsTooLarge("Too many trailer fields")
        trailers = None
        if self._trailer_lines:
            trailers, _ = parse_field_lines(self._trailer_lines, 0, limits)
            forbidden = FORBIDDEN_TRAILERS.intersection(k.lower() for k in trailers)
            if forbidden:
                raise BadRequest(f"Field not allowed in trailers: {sorted(forbidden)[0]}")
        self._trailer_lines = []
        self._finish(events, trailers)
        return True
