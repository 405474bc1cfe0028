"""ServerHttpProtocol: one HTTP/1.1 connection on the event loop.

    transport ──data_received──► RequestParser ──events──► app.on_request(head) → body sink
        ▲                                                   (an app kind: WSGI, ASGI, native)
        └──── response_head / send_response / send_body / end_response ◄──┘  (response.py)

The protocol owns the socket side of a connection: the parser, the one timer
(head, body idle, keep-alive), read and write flow control, pipelining
(one request at a time, answered in order), error responses, graceful closing
and the one teardown path (``connection_lost``). It knows nothing of
applications: an app kind is plugged in as a factory ``kind(channel)`` of the
object that gets each request (``seam.AppConnection``); its ``on_request``
returns a *sink* for the request body, and its response goes out through the
``ResponseChannel`` methods, which end it and go on to the next request.

A sink has ``feed_data(data, end_of_chunk)``, ``feed_eof(trailers)`` and
``set_exception(exc) -> bool``; the latter returns True when the application is
already running and so owns the response (the protocol then only closes).

Apps on the loop (native handlers, ASGI) run each request in a task from
``start_task()`` and await ``drain()`` after writing, so a slow client pauses
them. A connection switched to another protocol (WebSocket) is handed over with
``upgrade(receiver)``: from then on the receiver gets the bytes, the end of
input, the loss of the connection and the graceful ``closing``.
"""

import asyncio
import socket
from dataclasses import dataclass, field

from . import eager
from .errors import BadRequest, HttpError, RequestTimeout
from .heads import HeadCache
from .events import Data, RequestHead
from .limits import Limits
from .parser import DONE, RequestParser
from .forwarded import Forwarded, direct
from .proxyprotocol import ProxyHeaderError, parse_proxy_header
from .response import ResponseChannel
from .timers import ConnectionTimer
from .writer import continue_response

PIPELINE_BUFFER = 64 * 1024  # bytes of pipelined requests buffered before reading pauses
FIRST_REQUEST_GRACE = 1.0  # seconds a fresh connection gets to send its request while closing
NEXT_REQUEST_GRACE = 0.1  # seconds an idle keep-alive connection gets for the same
LINGER_TIMEOUT = 5.0  # seconds unread request bytes are drained after an early response
LINGER_LIMIT = 64 * 1024 * 1024  # bytes drained at most before the connection is closed anyway


@dataclass(slots=True)
class ServerConfig:
    """What every connection of a worker shares, whatever the app kind."""

    limits: Limits = field(default_factory=Limits)
    keepalive: float = 2.0  # gunicorn's keepalive: idle seconds between requests; 0 = no keep-alive
    head_timeout: float = 10.0  # seconds to receive a whole request head (408)
    body_timeout: float = 30.0  # idle seconds while receiving a body (408)
    tcp_keepalive: bool = True
    allowed_methods: frozenset | None = None  # others get 405
    debug: bool = False  # tracebacks in 500 pages
    server_header: bytes = b"asyncworker"
    scheme: str = "http"  # "https" on TLS listeners
    proxy: object = None  # a forwarded.ProxyPolicy: forwarded headers and the PROXY protocol
    refuse_underscores: bool = False  # gunicorn's header_map = refuse: a field name with "_" gets a 400
    log: object = None  # a gunicorn Logger (or anything with debug/info/warning/exception)
    access_log: bool = False  # write a line per request with log.access (gunicorn's accesslog)
    hooks: object = None  # accesslog.RequestHooks when gunicorn's pre_request or post_request is set
    sendfile: bool = True  # gunicorn's sendfile: files go by loop.sendfile where the loop has it
    heads: HeadCache = field(init=False)  # the response heads already checked (one per worker)

    def __post_init__(self):
        self.heads = HeadCache(self.server_header)


class NullSink:
    """The body sink of a request without a body."""

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        pass

    def feed_eof(self, trailers=None) -> None:
        pass

    def set_exception(self, exc: BaseException) -> bool:
        return False


NULL_SINK = NullSink()


class ServerHttpProtocol(ResponseChannel, asyncio.Protocol):
    early_data = b""  # bytes the client sent before it was accepted (see workers/listeners.py)
    runs_hooks = False  # (as its own app: see on_request)

    def __init__(self, config: ServerConfig, app=None, *, loop=None, owner=None):
        """``app``: the app kind, a factory ``app(channel) -> seam.AppConnection`` called once
        with this connection. Without one the protocol is its own app (a subclass that
        implements ``on_request``)."""
        self.config = config
        self.log = config.log
        self.loop = loop or asyncio.get_event_loop()
        self._owner = owner  # connection_opened(p), connection_closed(p), request_done()
        self.transport = None
        self.peername = None
        self.sockname = None
        self._parser = RequestParser(config.limits)
        self._timer = ConnectionTimer(self.loop, self._on_timeout)
        self._sink = NULL_SINK
        self._head: RequestHead | None = None  # the request being answered
        # The app kind's object answering that request (an exchange); dropped when
        # its response is finished or the connection is handed over (upgrade).
        self.exchange = None
        # The response in flight (response.py): its head, its body framing (None
        # while it has none, or when it went whole with its head).
        self._response = None
        self.framing = None
        self._truncation_told = False
        self.log_environ = None  # a kind's own environ for the record of this request (WSGI)
        self._record_requests = config.access_log or config.hooks is not None
        self._recording = False  # the request in flight gets a record when its response ends
        self._started = 0.0
        self._continue_pending = False
        self._response_started = False
        self._closing = False  # graceful shutdown asked
        self._peer_eof = False
        # May the response to the current request leave the connection open? Not with
        # keepalive 0, after a graceful stop or lost framing; after the client's end of
        # input, only while requests it sent before it remain (see _after_input_end).
        # An attribute kept up to date, as every response reads it.
        self.keep_alive_allowed = config.keepalive > 0
        self._received_any = False
        self._read_paused_by: set[str] = set()
        self.writing_paused = False  # the transport's buffer is full: senders wait for a drain
        self._dispatching = False
        self._advance_pending = False
        self._eager = False  # delivering the bytes read at accept: request tasks start at once
        self._first_step: asyncio.Task | None = None  # a request task to start once its bytes are delivered
        self._drain_waiter: asyncio.Future | None = None
        self._upgraded = None  # the receiver of an upgraded connection (WebSocket)
        self._input_failed = False  # a request was rejected: the client may still be sending
        self._linger_left = 0  # > 0 while draining unread input before closing
        self._proxy_buffer: bytes | None = None  # a PROXY protocol header being received
        self._forwarded: tuple | None = None  # (head, proxy.Forwarded) of the current request
        self._direct: Forwarded | None = None  # what a request that forwards nothing says (per peer)
        self._peer_trusted: bool | None = None  # may the peer forward? (per peer)
        self.app = app(self) if app is not None else self

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        if self.config.tcp_keepalive:
            _set_tcp_keepalive(transport)
        self._timer.start("keepalive", self.config.head_timeout)
        proxy = self.config.proxy
        if proxy is not None and proxy.expects_proxy_header(self.peername):
            self._proxy_buffer = b""
        if self._owner is not None:
            self._owner.connection_opened(self)
        early = self.early_data
        if early:
            self.early_data = b""
            self._eager = True
            try:
                self.data_received(early)
            finally:
                self._eager = False

    def data_received(self, data: bytes) -> None:
        if self._upgraded is not None:
            self._upgraded.data_received(data)
            return
        if self._linger_left:
            self._discard(data)
            return
        if self._input_failed:  # the framing is lost: nothing after the error is a request
            return
        if self._proxy_buffer is not None:
            data = self._read_proxy_header(data)
            if not data:
                return
        self._received_any = True
        parser = self._parser
        timer = self._timer
        if timer.phase == "body":
            timer.touch()
        try:
            events = parser.feed(data)
        except HttpError as exc:
            self._reject(exc)
            return
        if events:
            self._handle_events(events)
        elif self._head is None and timer.phase != "head" and parser.in_message:
            # The first bytes of a head: its time starts now (a head that arrives
            # whole never needs the timer).
            timer.start("head", self.config.head_timeout)
        if len(parser.buffer) > PIPELINE_BUFFER and parser.state == DONE:
            self.pause_reading("pipeline")

    def eof_received(self) -> bool:
        keep_open = self._input_ended()
        if self._head is not None and self._upgraded is None:
            self.app.on_input_end()  # a kind on the loop tells its app at once (ASGI http.disconnect)
        return keep_open

    def _input_ended(self) -> bool:
        self._peer_eof = True
        self._after_input_end()
        if self._upgraded is not None:
            return self._upgraded.eof_received()
        if self._linger_left:
            return False
        if self._head is not None and not self._parser.done:
            # The client stopped sending in the middle of a request body.
            self._sink.set_exception(ConnectionResetError("Client closed the connection during the body"))
            return False
        if self._head is not None:
            return True  # answer the request in flight, then close
        if self._parser.in_message:
            self._reject(BadRequest("Incomplete request"))
            return True
        return False

    def connection_lost(self, exc) -> None:
        """The one teardown path: every timer, waiter and request ends here."""
        self._timer.cancel()
        transport, self.transport = self.transport, None
        if transport is None:
            return
        self._wake_drain(ConnectionResetError("Client disconnected"))
        if self._upgraded is not None:
            self._upgraded.connection_lost(exc)
        elif self._head is not None:
            self._sink.set_exception(ConnectionResetError("Client disconnected"))
            self.app.on_disconnect()
        self._head = None
        if self._owner is not None:
            self._owner.connection_closed(self)

    def pause_writing(self) -> None:
        self.writing_paused = True
        self.app.on_pause_writing()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drain(None)
        self.app.on_resume_writing()

    # -- the app side, when the protocol is its own app (seam.AppConnection) ----

    def on_request(self, head: RequestHead):
        """Start answering ``head``; return the sink for its body."""
        raise NotImplementedError

    def on_disconnect(self) -> None:
        """The client went away while a request was in flight."""

    def on_input_end(self) -> None:
        pass

    def on_pause_writing(self) -> None:
        pass

    def on_resume_writing(self) -> None:
        pass

    # -- services for app adapters ----------------------------------------

    def start_task(self, coro) -> asyncio.Task:
        """A task for the app's handling of the current request.

        The first request of a new connection, read at accept and delivered by
        ``connection_made`` (which runs with the loop's callbacks, not in its pass
        over the sockets), takes its first step at once (see eager.py): under load
        a new client is answered without waiting for that pass, which may serve a
        thousand connections. Other requests start on the next loop iteration, so
        the responses to one pass go out together: stepping each where its bytes
        are read interleaves every response write with reads, and each write then
        wakes its client alone (measured: 14% fewer requests per second at c=50).
        """
        if not self._eager:
            return self.loop.create_task(coro)
        task = eager.create(self.loop, coro)
        self._first_step = task
        return task

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        self._response_started = True
        self._continue_pending = False
        transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport takes more writes; raise if the client is gone."""
        if self.transport is None:
            raise ConnectionResetError("Client disconnected")
        if not self.writing_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self.loop.create_future()
        await asyncio.shield(self._drain_waiter)

    def forwarded(self, head: RequestHead) -> Forwarded:
        """The client, scheme, forwarded host and forwarder fields of ``head``: the
        peer's own, unless a trusted proxy forwarded them (see forwarded.py)."""
        cached = self._forwarded
        if cached is not None and cached[0] is head:
            return cached[1]
        return self._resolve_forwarded(head)

    def upgrade(self, receiver) -> bytes:
        """Hand the connection to ``receiver`` after a 101 response has been written.

        ``receiver`` gets ``data_received``, ``eof_received``, ``connection_lost``
        and ``closing`` from now on; the request counts as answered. Returns the
        bytes the client sent after the request head, which belong to the receiver.
        """
        self._timer.cancel()
        self._head = None
        self.exchange = None  # the receiver now gets the bytes and the loss
        self._sink = NULL_SINK
        self._upgraded = receiver
        leftover = self._parser.detach()
        self.resume_reading("pipeline")
        if self._owner is not None:
            self._owner.request_done()
        return leftover

    def send_continue(self) -> None:
        """Send the lazy ``100 Continue``: only if asked and no response has started."""
        if self._continue_pending and not self._response_started and self.transport is not None:
            self._continue_pending = False
            self.transport.write(continue_response())

    async def sendfile(self, file, offset: int, count: int) -> int:
        """Send part of a regular file with ``loop.sendfile`` (the loop must support it)."""
        if self.transport is None:
            raise ConnectionResetError("Client disconnected")
        self._response_started = True
        return await self.loop.sendfile(self.transport, file, offset, count)

    def response_finished(self, keep_alive: bool) -> None:
        """The response to the current request is written; go on to the next one."""
        self._head = None
        self.exchange = None
        self._sink = NULL_SINK
        self._response_started = False
        self._continue_pending = False
        self._response = self.log_environ = None  # (framing stays until the next response)
        if self._owner is not None:
            self._owner.request_done()
        if self.transport is None:
            return
        if not (keep_alive and self._parser.state == DONE and self.keep_alive_allowed):
            self.close()
            return
        if self._dispatching:
            self._advance_pending = True
            return
        events = self._next_events()
        if events:
            self._handle_events(events)

    def pause_reading(self, reason: str) -> None:
        if not self._read_paused_by and self.transport is not None:
            self.transport.pause_reading()
        self._read_paused_by.add(reason)

    def resume_reading(self, reason: str) -> None:
        paused = self._read_paused_by
        if reason in paused:
            paused.discard(reason)
            if not paused and self.transport is not None:
                self.transport.resume_reading()

    def closing(self) -> None:
        """Graceful shutdown: close after the current response, or soon if idle.

        An idle connection's next request may already be on the way, so it gets a
        moment to arrive and is answered (with ``Connection: close``) rather than
        reset: a second for a connection accepted just now that has not received
        a byte yet, a tenth of one for a keep-alive connection between requests
        (its client sends the next request as soon as it has read a response).
        """
        self._closing = True
        self.keep_alive_allowed = False
        if self._upgraded is not None:
            closing = getattr(self._upgraded, "closing", None)
            if closing is not None:
                closing()
            else:
                self.close()
            return
        if self._head is not None:
            return
        if not self._parser.in_message:
            grace = NEXT_REQUEST_GRACE if self._received_any else FIRST_REQUEST_GRACE
            self._timer.start("keepalive", min(grace, self.config.head_timeout))

    def close(self) -> None:
        """Close after the write buffer is flushed (``connection_lost`` follows).

        If the client may still be sending the request we answered early (413,
        400, a response before the body was read), closing at once could make its
        TCP stack answer our reset by discarding the response it has not read
        yet: the connection is half-closed instead and its input drained a while.
        """
        self._timer.cancel()
        transport = self.transport
        if transport is None or self._linger_left:
            return
        if self._client_may_be_sending() and transport.can_write_eof():
            self._linger(transport)
        else:
            transport.close()

    # -- internals --------------------------------------------------------

    def _after_input_end(self) -> None:
        """After the client's end of input the buffer holds all it will send: keep-alive
        holds while a request after the current one is in it (called at the EOF and as
        each pipelined request is taken from the buffer)."""
        if not self._parser.buffer:
            self.keep_alive_allowed = False

    def _client_may_be_sending(self) -> bool:
        return (not self._peer_eof and self._upgraded is None
                and (self._input_failed or self._parser.in_message))

    def _linger(self, transport) -> None:
        self._linger_left = LINGER_LIMIT
        transport.write_eof()
        if self._read_paused_by:
            self._read_paused_by.clear()
            transport.resume_reading()
        self._timer.start("linger", LINGER_TIMEOUT)

    def _discard(self, data: bytes) -> None:
        self._linger_left = max(0, self._linger_left - len(data))
        if not self._linger_left and self.transport is not None:
            self.transport.close()

    def _wake_drain(self, exc: BaseException | None) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: nobody may be waiting any more

    def _handle_events(self, events: list) -> None:
        self._dispatching = True
        try:
            while True:
                for event in events:
                    kind = type(event)
                    if kind is RequestHead:
                        self._start_request(event)
                    elif kind is Data:
                        self._sink.feed_data(event.data, event.end_of_chunk)
                    else:
                        self._timer.stop()
                        sink = self._sink
                        if sink is not NULL_SINK:  # (most requests have no body)
                            sink.feed_eof(event.trailers)
                task = self._first_step
                if task is not None:
                    self._first_step = None
                    eager.step_now(self.loop, task)
                if not self._advance_pending:
                    return
                self._advance_pending = False
                events = self._next_events()
                if not events:
                    return
        finally:
            self._dispatching = False

    def _next_events(self) -> list:
        """Parse the next pipelined request, or arm the timer that waits for one."""
        if self._read_paused_by:
            self.resume_reading("pipeline")
        parser = self._parser
        try:
            events = parser.next_request()
        except HttpError as exc:
            self._reject(exc)
            return []
        if events:
            if self._peer_eof:
                self._after_input_end()
            return events
        if parser.buffer:  # the start of a request: no events yet, so in_message
            if self._peer_eof:
                self._reject(BadRequest("Incomplete request"))
            else:
                self._timer.start("head", self.config.head_timeout)
        elif self._peer_eof:
            self.close()
        else:
            self._timer.start("keepalive", self.config.keepalive)
        return []

    def _start_request(self, head: RequestHead) -> None:
        self._head = head
        if self._record_requests:
            self._recording = True
            self._start_record(head)
        if head.has_body:
            self._timer.start("body", self.config.body_timeout)
        # (a head without a body comes with its EndOfMessage, which stops the timer)
        self._continue_pending = head.expect_continue
        forwarded = self._resolve_forwarded(head)
        self._forwarded = (head, forwarded)
        if forwarded.error is not None:
            self.handle_error(400, forwarded.error, close=head.has_body)
            return
        if self.config.refuse_underscores:
            name = _underscore_name(head, forwarded.fields)
            if name is not None:
                self.handle_error(400, f"Invalid header name {name!r}: '_' is refused (header_map)",
                                  close=head.has_body)
                return
        allowed = self.config.allowed_methods
        if allowed is not None and head.method not in allowed:
            self.handle_error(405, f"Method {head.method} not allowed",
                              headers=[("Allow", ", ".join(sorted(allowed)))], close=head.has_body)
            return
        self._sink = self.app.on_request(head) or NULL_SINK

    def _resolve_forwarded(self, head: RequestHead) -> Forwarded:
        """Most requests forward nothing, or come from a peer that may not: their answer
        is the same for the whole connection, made once."""
        if self._direct is None:
            self._direct = direct(self.peername, self.config.scheme)
        proxy = self.config.proxy
        if proxy is None:
            return self._direct
        if self._peer_trusted is None:
            self._peer_trusted = proxy.trusts(self.peername)
        if not self._peer_trusted or not proxy.forwards(head.headers):
            return self._direct
        return proxy.resolve(head.headers, self.peername, self.config.scheme)

    def _read_proxy_header(self, data: bytes) -> bytes:
        """Take the PROXY protocol header off the start of the connection.

        Returns the bytes after it (empty while it is incomplete). The address it
        names becomes ``peername``; a bad or missing header closes the connection.
        """
        buffer = self._proxy_buffer + data
        try:
            header = parse_proxy_header(buffer, self.config.proxy.proxy_protocol)
        except ProxyHeaderError as exc:
            if self.log is not None:
                self.log.warning("Closing %s: %s", _peer_ip(self.peername), exc)
            self._proxy_buffer = None
            self.pause_reading("error")
            self.close()
            return b""
        if header is None:
            self._proxy_buffer = buffer
            return b""
        self._proxy_buffer = None
        if header.client is not None:
            self.peername = header.client
            self._direct = self._peer_trusted = None  # made for the previous peername
        return buffer[header.length:]

    def _reject(self, exc: HttpError) -> None:
        """A parse error: the framing is lost, so answer if we still can and close."""
        self._input_failed = True
        self.pause_reading("error")
        self._timer.stop()
        if self._head is not None and self._sink.set_exception(exc):
            self._peer_eof = True  # read nothing more; close after the app's response
            self.keep_alive_allowed = False
            return
        if self.log is not None:
            self.log.warning("Invalid request from %s: %s", _peer_ip(self.peername), exc.message)
        self.handle_error(exc.status, exc.message, exc, close=True)

    def _on_timeout(self, phase: str) -> None:
        if phase == "linger":
            self.transport.close()
            return
        if phase == "keepalive":
            self.close()
            return
        if self.log is not None:
            self.log.debug("Closing %s: %s timeout", _peer_ip(self.peername), phase)
        timeout = RequestTimeout(f"Timed out receiving the request {phase}")
        if phase == "body" and self._sink.set_exception(timeout):
            self.close()
            return
        if phase in ("head", "body"):
            self.handle_error(408, timeout.message, close=True)
        else:
            self.close()


def _underscore_name(head: RequestHead, allowed: frozenset) -> str | None:
    """The first field name holding "_" that is not a trusted proxy's forwarder field."""
    for name in head.headers:
        if "_" in name and name.upper() not in allowed:
            return name
    return None


def _peer_ip(peername) -> str:
    return str(peername[0]) if isinstance(peername, tuple) else "unix socket"


def _set_tcp_keepalive(transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        pass
