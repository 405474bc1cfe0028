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

The parser is three parts, one module each, over one buffer and one state
(``parserstate.py``): ``HeadReader`` (``headreader.py``) reads the head, by the
one-pass parse of ``plainhead.py`` when it is plain (the C fast path of
``_chead.c`` and its Python reference) or by the full checks; ``BodyReader``
(``bodyreader.py``) reads a Content-Length or chunked body and its trailers; this
module runs them: its table gives each state its step. The names other modules
and the tests import from here stay importable from here.
"""

from .bodyreader import END_OF_MESSAGE, FORBIDDEN_TRAILERS, BodyReader
from .compiled import compiled
from .copies import copy_of
from .errors import BadRequest
from .headreader import HeadReader
from .host import VALID_HOSTS
from .limits import Limits
from .parserstate import BODY, CHUNK_CRLF, CHUNK_DATA, CHUNK_SIZE, DONE, ERROR, HEAD, TRAILERS
from .plainhead import (
    SPECIAL_CONNECTION,
    SPECIAL_CONTENT_LENGTH,
    SPECIAL_CONTENT_TYPE,
    SPECIAL_EXPECT,
    SPECIAL_HOST,
    SPECIAL_TRANSFER_ENCODING,
    SPECIAL_UPGRADE,
    plain_head,
    plain_head_c,
    plain_head_py,
    request_head,
    simple_head,
    simple_head_c,
    simple_head_py,
)
from .plainhead import NEEDS_CHECKS as _NEEDS_CHECKS  # (the tests read these two by these names)
from .plainhead import VERSIONS as _VERSIONS

__all__ = [
    "BODY", "CHUNK_CRLF", "CHUNK_DATA", "CHUNK_SIZE", "DONE", "ERROR", "HEAD", "TRAILERS",
    "FORBIDDEN_TRAILERS", "RequestParser",
    "SPECIAL_CONNECTION", "SPECIAL_CONTENT_LENGTH", "SPECIAL_CONTENT_TYPE", "SPECIAL_EXPECT",
    "SPECIAL_HOST", "SPECIAL_TRANSFER_ENCODING", "SPECIAL_UPGRADE",
    "plain_head", "plain_head_c", "plain_head_py", "simple_head", "simple_head_c", "simple_head_py",
]


def _by_state(steps: dict) -> tuple:
    """``steps`` as a tuple indexed by state (HEAD ... ERROR), None for a state without one."""
    return tuple(steps.get(state) for state in range(ERROR + 1))


class RequestParser(HeadReader, BodyReader):
    # One parser per connection, read on every request: its state in slots (see ServerHttpProtocol).
    __slots__ = ("limits", "buffer", "state", "_plain_limits", "_head_size", "_scan_from", "_line_start", "_crlfs",
                 "_remaining", "_body_size", "_trailer_lines")
    _plain_head = staticmethod(plain_head)  # a subclass may pick either implementation (tests do)
    # The compiled shortcut for a whole common head (plainhead.request_head), or None.
    _request_head = request_head

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self._head_size = limits.head_size
        self._plain_limits = limits.plain
        # Read them, never write them: the bytes received and not parsed yet, and
        # where the parser is (HEAD ... ERROR). The connection's per-request checks
        # read these two plain attributes (a property costs a call).
        self.buffer = bytearray()
        self.state = HEAD
        # How far the bytes of an unfinished head, chunk-size line or trailer line
        # have been looked at, so that the next piece is looked at alone (0: a new one).
        self._scan_from = 0
        self._crlfs = 0  # the CRLFs of an unfinished head before _scan_from
        self._line_start = 0  # where its line after the last of them starts
        self._remaining = 0  # body bytes left (BODY) or chunk bytes left (CHUNK_DATA)
        self._body_size = 0  # decoded body bytes so far, for the body cap
        self._trailer_lines: list[bytes] | tuple = ()  # (a list of its own as trailers start)

    def fresh(self) -> "RequestParser":
        """A parser for a new connection, as a copy of this one, which has parsed nothing (its
        template connection's, see copies.py): its slots in one compiled call, then a buffer of
        its own. A subclass with an instance dict is made the usual way."""
        cls = type(self)
        if cls.__dictoffset__:
            return cls(self.limits)
        parser = copy_of(self)
        parser.buffer = bytearray()
        return parser

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
        if _whole_head is not None:  # (its first branch, compiled: see _whole_head below)
            events = _whole_head(self, data)
            if events is not None:
                return events
        if self.state == HEAD and not self.buffer and type(data) is bytes:
            end = data.find(b"\r\n\r\n")
            if 0 < end == len(data) - 4 and end < self._head_size - 3:
                # The commonest piece, exactly one plain head: parsed here, no call more.
                try:
                    shortcut = self._request_head
                    head = shortcut(data, end, self._plain_limits, VALID_HOSTS) if shortcut is not None else None
                    if head is None:
                        head = self._parse_plain_head(data[:end])
                    if head is not None:
                        if not head.has_body:
                            self.state = DONE
                            return [head, END_OF_MESSAGE]
                        self._start_body(head)  # raises on a body over the cap
                        return [head]
                except Exception:
                    self.state = ERROR
                    raise
            elif 0 < end < self._head_size - 3:
                events = self._plain_head_first(data, end)
                if events is not None:
                    return events
        elif (self.state == BODY or self.state == CHUNK_DATA) and 0 < len(data) <= self._remaining \
                and not self.buffer and type(data) is bytes:
            return self._body_piece(data)
        self.buffer += data
        if self.state == DONE:
            return []
        return self._run()

    def _plain_head_first(self, data: bytes, end: int) -> list | None:
        """A plain head, then more: (part of) its Content-Length body, or the next requests. Its
        events are those _run gives, without passing the head (nor the body) through
        the buffer; None for any other head (a leading empty line, obsolete forms...), left to
        the buffered path."""
        try:
            shortcut = self._request_head
            head = shortcut(data, end, self._plain_limits, VALID_HOSTS) if shortcut is not None else None
            if head is None:
                head = self._parse_plain_head(data[:end])
                if head is None:
                    return None
            rest = len(data) - end - 4
            if not head.has_body:
                self.state = DONE
                self.buffer += memoryview(data)[end + 4:]  # (pipelined: the next request's)
                return [head, END_OF_MESSAGE]
            self._start_body(head)  # raises on a body over the cap
            if self.state == BODY and rest <= self._remaining:
                return [head, *self._body_piece(data[end + 4:])]
            self.buffer += memoryview(data)[end + 4:]
            return [head, *self._run()]
        except Exception:
            self.state = ERROR
            raise

    def next_request(self) -> list:
        """Start on the next pipelined request; return events from buffered bytes.

        Bytes that are one whole head alone are fed again as one piece, through ``feed``'s
        shortcuts: the next request of a client that waits for each answer often comes before
        the loop has ended the one before (a WSGI thread wrote that answer itself, lease.py),
        and waits here. (Only then: the test looks at the first head's bytes, and the copy is
        of one head, whatever else a client pipelines.)"""
        if self.state != DONE:
            raise RuntimeError("the current request is not finished")
        self.state = HEAD
        self._scan_from = 0
        self._body_size = 0
        buffer = self.buffer
        if not buffer:
            return []
        if buffer.endswith(b"\r\n\r\n") and buffer.find(b"\r\n\r\n") == len(buffer) - 4:
            data = bytes(buffer)
            buffer.clear()
            return self.feed(data)
        return self._run()

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
    # the buffer waits for next_request(). (Looked up here once, so a subclass that
    # overrides a step must replace its entry too.)
    _STEPS = _by_state({
        HEAD: HeadReader._read_head,
        BODY: BodyReader._body_data,
        CHUNK_SIZE: BodyReader._chunk_size,
        CHUNK_DATA: BodyReader._chunk_data,
        CHUNK_CRLF: BodyReader._chunk_crlf,
        TRAILERS: BodyReader._trailers,
    })

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


# RequestParser.feed's first branch in C, for a parser of exactly this class fed one whole
# head alone (the piece of every request of a client that waits for each answer): its
# events, or None for any other parser or piece. That branch is its reference, and what runs
# for a subclass (the tests' parsers that leave the shortcuts out, the uwsgi parser).
_whole_head = whole_head = compiled("whole_head")  # (the connection calls it before feed: server.py)
if _whole_head is not None:
    compiled("set_parser_type")(RequestParser, END_OF_MESSAGE, (HEAD, DONE, ERROR), VALID_HOSTS)
