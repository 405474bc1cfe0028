"""H2Stream: one HTTP/2 stream, the ``Channel`` an app kind answers one request through.

    H2Connection ──start()──► app.on_request(head) ──► body sink (DATA, acknowledged as consumed)
    app kind ──response_head / send_response / send_body / end_response / send_file──► HEADERS, DATA,
             trailers; each stream's and the connection's send window respected (``writing_paused``
             and ``drain()`` hold the app while a window is closed, as a full socket does on HTTP/1.1)
    every end ──► one record (access log, post_request), then the connection forgets the stream

An app kind (WSGI, ASGI, native) gets one stream as its channel and one ``AppConnection``
of its own per stream, so streams run side by side: WSGI ones in the thread pool, the
others as tasks. Heads are checked and cached by the worker's ``HeadCache`` (the same
checks as HTTP/1.1; the HTTP/1.1 bytes it also makes are not used); their fields go
out as HPACK fields with the hop-by-hop ones left out.
"""

import asyncio
import traceback
from http import HTTPStatus

from server.protocol.accesslog import LoggedRequest, LoggedResponse, minimal_environ, now, record_request_end, run_hook
from server.protocol.files import body_span, send_file
from server.protocol.peer import PeerResolution
from server.protocol.seam import NO_APP
from server.protocol.writer import BodyFraming, http_date

from .flow import StreamFlow

_DROPPED = frozenset((b"content-length", b"date", b"server", b"connection", b"keep-alive", b"transfer-encoding",
                      b"upgrade", b"proxy-connection", b"te", b"trailer"))
MAX_KEPT_FIELDS = 32  # response heads' fields kept per connection


class H2Stream(StreamFlow, PeerResolution):
    # Slots, not an instance dict: one stream is made per request (see ServerHttpProtocol).
    __slots__ = ("conn", "id", "head", "loop", "log", "config", "keep_alive_allowed", "exchange", "log_environ",
                 "framing", "_response", "_response_started", "_continue_sent", "_finished", "_started",
                 "_recording", "app",
                 # peer.py
                 "peername", "sockname", "_proxy_buffer", "request_forwarded", "_direct", "_peer_trusted")

    def __init__(self, conn, stream_id: int, head, forwards: bool | None = None):
        """``forwards``: whether the head carries a field the proxy policy reads, if known."""
        self.conn = conn
        self.id = stream_id
        self.head = head
        self.loop = conn.loop
        self.log = conn.log
        self.config = conn.config
        self._init_peer()
        self.peername = conn.peername
        self.sockname = conn.sockname
        self._direct, self._peer_trusted = conn.peer  # (the connection's: the same for every stream)
        if forwards is False:
            self.request_forwarded = (head, self._direct)  # (what _resolve_forwarded gives such a head)
        self.keep_alive_allowed = True
        self.exchange = self.log_environ = self.framing = None
        self._init_flow()
        self._response = None
        self._response_started = False
        self._continue_sent = False
        self._finished = False
        self._started = now()
        self._recording = conn.config.access_log or conn.config.hooks is not None
        self.app = conn.kind(self)

    @property
    def transport(self):
        """The connection's transport while this stream can still be answered, else None."""
        return self.conn.transport if self.open else None

    # -- the request -----------------------------------------------------------------

    def start(self) -> None:
        """Hand the request to the app kind (after the events of the read that opened it);
        not if the stream was answered already (its body refused in that same read)."""
        if self._finished:
            return
        head = self.head
        if self.request_forwarded is None:
            self.request_forwarded = (head, self._resolve_forwarded(head))
        hooks = self.config.hooks
        if hooks is not None and hooks.pre_request is not None and not self.app.runs_hooks:
            run_hook(hooks, hooks.pre_request, self.log, LoggedRequest(head, self.request_forwarded[1].client))
        if ((self.request_forwarded[1].error is not None or self.config.refuse_underscores)
                and not self._peer_checked(head)):
            return
        allowed = self.config.allowed_methods
        if allowed is not None and head.method not in allowed:
            self.handle_error(405, f"Method {head.method} not allowed", headers=[("Allow", ", ".join(sorted(allowed)))])
            return
        body = self.config.limits.body
        if body and head.content_length is not None and head.content_length > body:
            self.handle_error(413, f"Request body larger than {body} bytes")
            return
        self.deliver(self.app.on_request(head))

    def forwarded(self, head):
        cached = self.request_forwarded
        if cached is not None and cached[0] is head:
            return cached[1]
        return self._resolve_forwarded(head)

    def start_task(self, coro) -> asyncio.Task:
        return self.loop.create_task(coro)

    def lease_socket(self) -> None:
        """No socket of its own: a stream's responses are written by the loop (see lease.py)."""
        return None

    def send_continue(self) -> None:
        if self.head.expect_continue and not self._response_started and not self._continue_sent and self.open:
            self._continue_sent = True
            self.conn.send_headers(self, [(b":status", b"100")], False)

    # -- the response: heads ---------------------------------------------------------

    def response_head(self, request, status: int | str, reason, fields, body_size=None, close=False, normalise=None):
        """``(Head, b"")``: checked and cached as HTTP/1.1 heads are (any thread)."""
        heads = self.config.heads
        try:
            head = heads.cache.get((status, reason, fields, request.method == "HEAD", (1, 1), True,
                                    body_size is not None))
        except TypeError:
            head = None
        if head is None:
            head = heads.head(status, reason, fields, request.method, (1, 1), True, body_size, normalise)[0]
        return head, b""

    def _fields(self, head, framing) -> list:
        """The HPACK fields of ``head``: made once per head and length on a connection (see
        ``H2Connection.response_fields``), with the date of now."""
        kept = self.conn.response_fields
        key = (head, framing.length)
        fields = kept.get(key)
        if fields is None:
            fields = self._head_fields(head, framing.length)
            if len(kept) >= MAX_KEPT_FIELDS:
                kept.clear()
            kept[key] = fields
        return [*fields, (b"date", http_date())]

    def _head_fields(self, head, length) -> tuple:
        status = head.status
        fields = [(b":status", b"%d" % status)]
        for name, value in head.headers:
            # (isinstance: a str subclass too, such as multidict's istr of aiohttp-style constants)
            name = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
            if name not in _DROPPED:  # (no blanks at either end in HTTP/2: RFC 9113 s8.2.1)
                fields.append((name, (value.encode("latin-1") if isinstance(value, str) else value).strip(b" \t")))
        if length is not None and status >= 200 and status != 204:
            fields.append((b"content-length", b"%d" % length))
        server = self.config.server_header
        if server:
            fields.append((b"server", server))
        return tuple(fields)

    # -- the response: sending (loop thread) -----------------------------------------

    def send_response(self, head, data: bytes, body: bytes = b"", end: bool = False, size: int = 0) -> bool:
        self._response = head
        self._response_started = True
        length = size if head.sized else head.length
        framing = self.framing = BodyFraming(length, False, head.no_body, True)
        if not self.open:
            return True
        body = framing.body(body)
        ends = end or framing.truncated
        fields = self._fields(head, framing)
        if ends and framing.complete and self.conn.send_whole_response(self, fields, body):
            self._done()  # (most responses: one head and body that the windows take)
            return False
        self.conn.send_response_head(self, fields, ends and not body)
        if ends:
            self._end(body)
            return False
        self.queue(body)  # (with no body: writes the head)
        return self.writing_paused

    def send_body(self, data: bytes, end: bool = False) -> bool:
        framing = self.framing
        data = framing.body(data)
        if end or framing.truncated:
            if framing.truncated:
                self.log.warning("Response to %s %s longer than its Content-Length (%s): truncated",
                                 self.head.method, self.head.target, framing.length)
            self._end(data)
            return False
        if data and self.open:
            self.queue(data)
        return self.writing_paused

    def send_pieces(self, pieces: list, size: int, end: bool = False) -> bool:
        return self.send_body(b"".join(pieces), end)  # (DATA frames are made of one piece)

    def end_response(self, data: bytes = b"", trailers: bytes | None = None) -> None:
        self._end(self.framing.body(data) if data else b"", _trailer_fields(trailers) if trailers else None)

    def _end(self, data: bytes, trailers=None) -> None:
        if not self.framing.complete:  # shorter than its Content-Length: the client sees it cut
            self.abort_response()
            return
        if self.open:
            self.queue(data, end=True, trailers=trailers)
        self._done()

    async def send_file(self, file, offset: int, count: int, end: bool = False) -> int:
        framing = self.framing
        count = body_span(framing, count)
        if count:
            await send_file(self, framing, file, offset, count)  # by blocks: this config has no sendfile
        if end:
            self.end_response()
        return count

    def write(self, data: bytes) -> None:
        """Body bytes already framed (the file sender's blocks)."""
        if data and self.open:
            self.queue(data)

    def abort_response(self) -> None:
        """The response cannot be completed: the stream is reset (the connection goes on)."""
        if self.open:
            self.conn.reset(self, "INTERNAL_ERROR")
            self.close_stream(ConnectionResetError("Response cut"), notify=False)
        self._done()

    def handle_error(self, status: int, message: str = "", exc=None, headers=None, close: bool = True) -> None:
        """An error page on this stream, or a reset once its response has begun."""
        if self._finished:
            return
        if self._response_started:
            self.abort_response()
            return
        if self.config.debug and exc is not None and status >= 500:
            message = "".join(traceback.format_exception(exc))
        reason = HTTPStatus(status).phrase
        body = ((message or reason) + "\n").encode("utf-8")
        fields = (("Content-Type", "text/plain; charset=utf-8"), *(headers or ()))
        head, data = self.response_head(self.head, status, reason, fields, len(body))
        self.send_response(head, data, body, end=True, size=len(body))

    def switched_protocols(self, data: bytes, fields) -> None:
        raise RuntimeError("No protocol switch on an HTTP/2 stream")

    def upgrade(self, receiver) -> bytes:
        raise RuntimeError("No protocol switch on an HTTP/2 stream")

    # -- the end of the exchange -------------------------------------------------------

    def _done(self) -> None:
        """The response is complete (or cut): its record, once; the app kind's object goes."""
        if self._finished:
            return
        self._finished = True
        if self._recording and self._response is not None:
            self._record(self.framing.sent if self.framing is not None else 0)
        self.exchange = None
        self.app = NO_APP  # (it holds this stream: dropped, the two go without the garbage collector)
        self.conn.response_done(self)

    def _record(self, sent: int) -> None:
        head, response = self.head, self._response
        config = self.config
        hooks = None if self.app.runs_hooks else config.hooks
        client = self.forwarded(head).client
        environ = self.log_environ or minimal_environ(head, client)
        record_request_end(self.log, hooks, config.access_log, LoggedRequest(head, client), environ,
                           LoggedResponse(f"{response.status} {response.reason}", sent, response.headers),
                           now() - self._started)


def _trailer_fields(trailers: bytes) -> list:
    """HTTP/1.1 trailer lines (``Name: value\\r\\n``...) as HPACK fields."""
    fields = []
    for line in trailers.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip():
            fields.append((name.strip().lower(), value.strip()))
    return fields
