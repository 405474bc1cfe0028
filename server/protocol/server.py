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
import functools

from . import eager
from .compiled import compiled
from .closing import (FIRST_REQUEST_GRACE, LINGER_LIMIT, LINGER_TIMEOUT, NEXT_REQUEST_GRACE, NOT_PAUSED,
                      ConnectionEnding)
from .config import ServerConfig
from .copies import COPIES_COMPILED, copy_of
from .cork import CORK_LIMIT, PassEnd, WriteCoalescing
from .errors import BadRequest, HttpError
from .events import Data, EndOfMessage, RequestHead
from .heads import Head
from .parser import DONE, HEAD, RequestParser, whole_head
from .peer import PeerResolution, peer_ip, set_tcp_keepalive, shared_sockname
from .rates import NOT_WATCHED, ConnectionRates
from .response import SEPARATE_BODY, ResponseChannel
from .seam import NO_APP, AppConnection
from .timers import GONE_TIMER, NO_TIMER, ConnectionTimer
from .wakeup import settle
from .writer import continue_response

__all__ = ["CORK_LIMIT", "FIRST_REQUEST_GRACE", "LINGER_LIMIT", "LINGER_TIMEOUT", "NEXT_REQUEST_GRACE", "NULL_SINK",
           "PIPELINE_BUFFER", "ServerConfig", "ServerHttpProtocol", "connection_factory", "data_received_py"]

PIPELINE_BUFFER = 64 * 1024  # bytes of pipelined requests buffered before reading pauses


def connection_factory(cls: type, *args):
    """What makes each new connection ``cls(*args)``: a template's ``copied`` where its
    connections can be copies (copies.py), else the class itself."""
    if not COPIES_COMPILED or cls.__dictoffset__ or cls.new_kind is ServerHttpProtocol.new_kind:
        return functools.partial(cls, *args)
    return cls(*args).copied


class NullSink:
    """The body sink of a request without a body."""

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        pass

    def feed_eof(self, trailers=None) -> None:
        pass

    def set_exception(self, exc: BaseException) -> bool:
        return False


NULL_SINK = NullSink()


class ServerHttpProtocol(ResponseChannel, WriteCoalescing, PeerResolution, ConnectionEnding, ConnectionRates,
                         AppConnection, asyncio.Protocol):
    # A connection's state is in slots, not an instance dict: a worker holds thousands of
    # connections, and each request reads and writes dozens of these (a dict of 50 keys is
    # past what CPython shares between instances: 1.6 KB and a lookup per access).
    # Subclasses without ``__slots__`` get a dict for their own attributes as usual.
    __slots__ = (
        # this class
        "config", "log", "loop", "_owner", "transport", "app", "exchange", "early_data", "write_closed",
        "_parser", "_timer", "_sink", "_head", "_continue_pending", "_response_started", "_peer_eof",
        "keep_alive_allowed", "_received_any", "_read_paused_by", "writing_paused", "_dispatching",
        "_advance_pending", "_advance_when_drained", "idle_until", "_eager", "_first_step",
        "_drain_waiter", "_upgraded", "_input_failed", "_body_pending",
        # closing.py
        "_closing", "_linger_left",
        # cork.py
        "_corked", "_corked_size", "_uncork_due", "pass_end",
        # peer.py
        "peername", "sockname", "_proxy_buffer", "request_forwarded", "_direct", "_peer_trusted",
        # rates.py
        "_body_received", "_buffered_at_pause", "_written_while_paused", "_body_rate", "_response_rate",
        # response.py
        "_response", "framing", "_truncation_told", "log_environ", "_record_requests", "_recording", "_started",
        "socket_fd", "_kept_lease",
    )
    parser_class = RequestParser  # what reads requests off the bytes: ``parser_class(limits)``
    # As its own app (``app`` None: a subclass implementing on_request), the
    # AppConnection methods it inherits are its own.

    def __init__(self, config: ServerConfig, app=None, *, loop=None, owner=None):
        """``app``: the app kind, a factory ``app(channel) -> seam.AppConnection`` called once
        with this connection. Without one the protocol is its own app (a subclass that
        implements ``on_request``)."""
        self.config = config
        self.log = config.log
        self.loop = loop or asyncio.get_event_loop()
        self._owner = owner  # connection_opened(p), connection_closed(p), request_done()
        self.transport = None
        self.early_data = b""  # bytes the client sent before it was accepted (see workers/listeners.py)
        self.write_closed = False  # our side of the connection is shut (see closing.py): writes are dropped
        self._init_peer()
        self._init_cork()
        self._parser = self.parser_class(config.limits)
        self._timer = NO_TIMER  # (made as it first starts: timers.py)
        self._sink = NULL_SINK
        self._head: RequestHead | None = None  # the request being answered
        # The app kind's object answering that request (an exchange); dropped when
        # its response is finished or the connection is handed over (upgrade).
        self.exchange = None
        self._init_response(config)
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
        self._read_paused_by: "set[str] | frozenset[str]" = NOT_PAUSED  # a set while paused
        self.writing_paused = False  # the transport's buffer is full: senders wait for a drain
        self._dispatching = False
        self._advance_pending = False
        self._advance_when_drained = False  # the next request waits for the client to read
        # Between requests: its keep-alive deadline (the same keepalive for all: they order the
        # connections by when they went idle); None while busy.
        self.idle_until: float | None = None
        self._eager = False  # delivering the bytes read at accept: request tasks start at once
        self._first_step: asyncio.Task | None = None  # a request task to start once its bytes are delivered
        self._drain_waiter: asyncio.Future | None = None
        self._upgraded = None  # the receiver of an upgraded connection (WebSocket)
        self._input_failed = False  # a request was rejected: the client may still be sending
        self._body_pending = False  # the request's body has begun and not ended
        self._linger_left = 0  # > 0 while draining unread input before closing
        self._init_rates(config)
        self.app = app(self) if app is not None else self

    def new_kind(self) -> AppConnection:
        """This connection's own object of its app kind (a class that plugs one in says which):
        what ``copied`` makes for a copy."""
        raise NotImplementedError

    def copied(self) -> "ServerHttpProtocol":
        """A new connection with this one's state, but for a parser and an app kind's object of
        its own: ``self`` is a template, made the usual way and never connected (see copies.py)."""
        connection = copy_of(self)
        connection._parser = self._parser.fresh()
        connection.app = connection.new_kind()
        return connection

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        # (the listener may have given them: what accept told, see workers/listeners.py)
        if self.peername is None:
            self.peername = transport.get_extra_info("peername")
        if self.sockname is None:
            self.sockname = shared_sockname(transport.get_extra_info("sockname"))
        if self.config.tcp_keepalive:
            set_tcp_keepalive(transport)
        proxy = self.config.proxy
        # (the policy's first test, here: a call less per connection without the PROXY protocol)
        if proxy is not None and proxy.proxy_protocol != "off" and proxy.expects_proxy_header(self.peername):
            self._proxy_buffer = b""
        if self._owner is not None:
            self._owner.connection_opened(self)
        early = self.early_data
        if early:
            self.early_data = b""
            self.first_data_received(early)
        if (self._head is None and self._upgraded is None and self._timer.phase is None
                and not transport.is_closing()):
            # Waiting for the first request's bytes: they have head_timeout to come, timed with
            # every new connection's wait (timers.FirstWaits) until this one makes its own timer.
            # (A request read at accept needs none: most connections never make one.)
            self.config.first_waits.add(self, self.loop)

    def first_data_received(self, data: bytes) -> None:
        """The connection's first bytes, read before the loop reads for it (at accept, or by
        the first read of a connection served on its socket: workers/accepted.py), outside
        any task: a request in them takes its first step at once (see ``start_task``)."""
        self._eager = True
        try:
            self.data_received(data)
        finally:
            self._eager = False

    def needs_reading(self) -> bool:
        """Whether the connection must read again; asked of a connection served on its
        socket once it has taken the bytes read at accept (workers/accepted.py). No only
        while the one request in flight is whole, its answer closes the connection, and its
        kind does not listen to the client meanwhile (``AppConnection.reads_while_running``)."""
        head = self._head
        return (head is None or self._parser.state != DONE or self._upgraded is not None
                or self._input_failed or self.app.reads_while_running
                or (head.keep_alive and self.keep_alive_allowed))

    def transport_handed_over(self, transport) -> None:
        """The loop's transport, in place of the one the connection was served on at accept."""
        if self.transport is not None:
            self.transport = transport

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
            # (feed's first branch, compiled, called here: every request's head is a call less;
            # on a miss feed tries it again, which costs little: it looks at the state first)
            events = whole_head(parser, data) if whole_head is not None else None
            if events is None:
                events = parser.feed(data)
        except HttpError as exc:
            self._reject(exc)
            return
        if events:
            if handle_events is not None:  # (_handle_events, compiled: see the end of this module)
                handle_events(self, events)
            else:
                self._handle_events(events)
        elif self._head is None and timer.phase != "head" and parser.in_message:
            # The first bytes of a head: its time starts now (a head that arrives
            # whole never needs the timer).
            self._start_timer("head", self.config.head_timeout)
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
        if self._kept_lease is not None:
            self.drop_kept_lease()
        timer = self._timer
        if timer is not NO_TIMER:  # (most connections behind a proxy never made one)
            timer.close()
        else:
            self.config.first_waits.waiting.pop(self, None)
        self._timer = GONE_TIMER
        if self._body_rate is not NOT_WATCHED or self._response_rate is not NOT_WATCHED:  # (most watched neither)
            self._stop_rates()
        transport, self.transport = self.transport, None
        self._corked = None
        if transport is None:
            return
        if self._drain_waiter is not None:  # (an exception made only for a waiter to raise)
            self._wake_drain(ConnectionResetError("Client disconnected"))
        if self._upgraded is not None:
            self._upgraded.connection_lost(exc)
        elif self._head is not None:
            self._sink.set_exception(ConnectionResetError("Client disconnected"))
            self.app.on_disconnect()
        self._head = None
        if self._owner is not None:
            self._owner.connection_closed(self)
        if self.exchange is None and self._upgraded is None:  # (_let_app_go, inline: every connection)
            self.app = NO_APP

    def _let_app_go(self) -> None:
        """The connection is lost and holds no exchange: the kind's object, which refers back
        to it, is let go. The two are then freed as their last references go, not left to the
        garbage collector (a connection per request, behind a proxy, makes many).

        Past the loss only a response's end reads ``app`` (``runs_hooks``, in ``_record``), and
        a kind that runs the hooks itself (WSGI) keeps its exchange until that end."""
        if self._upgraded is None:
            self.app = NO_APP

    def pause_writing(self) -> None:
        if self.writing_paused:  # (a connection served on its socket first: see workers/accepted.py)
            return
        self.writing_paused = True
        self._watch_response()
        self.app.on_pause_writing()

    def resume_writing(self) -> None:
        if not self.writing_paused:
            return
        self.writing_paused = False
        self._response_rate.stop()
        self._wake_drain(None)
        self.app.on_resume_writing()
        if self._advance_when_drained and self.transport is not None:
            self._advance_when_drained = False
            self._advance()

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
        The pass counts the tasks it starts so that the last to answer writes the
        answers of all (cork.py).
        """
        if not self._eager:
            self.pass_end.expected += 1  # (an answer the pass waits for, see cork.py)
            return self.loop.create_task(coro)
        task = eager.create(self.loop, coro)
        self._first_step = task
        return task

    def write(self, data: bytes) -> None:
        if self._corked is not None:
            self._uncork()
        transport = self.transport
        if transport is None or self.write_closed:
            return
        self._response_started = True
        self._continue_pending = False
        if self.writing_paused:
            self._written_while_paused += len(data)
        transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport takes more writes; raise if the client is gone."""
        if self.transport is None:
            raise ConnectionResetError("Client disconnected")
        if not self.writing_paused:
            return
        await asyncio.shield(self.loss_waiter())

    def loss_waiter(self) -> asyncio.Future:
        """A future that fails with ``ConnectionResetError`` when the connection is lost (the
        one ``drain`` waits on; whoever else resolves it, it is replaced once done)."""
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = self.loop.create_future()
        return waiter

    def upgrade(self, receiver) -> bytes:
        """Hand the connection to ``receiver`` after a 101 response has been written.

        ``receiver`` gets ``data_received``, ``eof_received``, ``connection_lost``
        and ``closing`` from now on; the request counts as answered. Returns the
        bytes the client sent after the request head, which belong to the receiver.
        A connection that has parsed nothing yet (HTTP/2 chosen by ALPN or its preface)
        is handed over the same way, with no bytes of its own and no request counted.
        """
        self._timer.cancel()
        self._head = None
        self.exchange = None  # the receiver now gets the bytes and the loss
        self._sink = NULL_SINK
        self._upgraded = receiver
        leftover = self._parser.detach() if self._received_any else b""
        self.resume_reading("pipeline")
        if self._owner is not None and self._received_any:
            self._owner.request_done()
        return leftover

    def send_continue(self) -> None:
        """Send the lazy ``100 Continue``: only if asked and no response has started."""
        if self._continue_pending and not self._response_started and self.transport is not None:
            self._continue_pending = False
            self.uncork()  # (the end of the response before, if it is still held)
            self.transport.write(continue_response())

    async def sendfile(self, file, offset: int, count: int) -> int:
        """Send part of a regular file with ``loop.sendfile`` (the loop must support it)."""
        if self.transport is None:
            raise ConnectionResetError("Client disconnected")
        if self._corked is not None:
            self._uncork()
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
        # The close comes first, before the owner accepts more clients (request_done): the
        # last answer's bytes wait for it, to go with its FIN (cork.py).
        closes = self.transport is not None and not (keep_alive and self._parser.state == DONE
                                                     and self.keep_alive_allowed)
        if closes:
            self.close()
        if self._owner is not None:
            self._owner.request_done()
        if self.transport is None:
            self._let_app_go()  # (it outlived its connection)
            return
        if closes:
            return
        if self.writing_paused:
            # The client is not reading what it asked for: its next request waits until it
            # does (each waiting response would otherwise add its body to our buffer).
            self._advance_when_drained = True
            return
        if self._dispatching:
            self._advance_pending = True
            return
        events = self._next_events()  # (what _advance does, without its call: every request)
        if events:
            self._handle_events(events)

    def _advance(self) -> None:
        """Go on to the next pipelined request, or wait for one."""
        events = self._next_events()
        if events:
            self._handle_events(events)

    def pause_reading(self, reason: str) -> None:
        paused = self._read_paused_by
        if paused:
            paused.add(reason)
            return
        self._read_paused_by = {reason}
        if self.transport is not None:
            self.transport.pause_reading()
            self._body_rate.hold()  # (the client waits for us, not we for it)

    def resume_reading(self, reason: str) -> None:
        paused = self._read_paused_by
        if reason in paused:
            paused.discard(reason)
            if not paused:
                self._read_paused_by = NOT_PAUSED
                if self.transport is not None:
                    self.transport.resume_reading()
                    self._body_rate.release()

    # -- internals --------------------------------------------------------

    def _after_input_end(self) -> None:
        """After the client's end of input the buffer holds all it will send: keep-alive
        holds while a request after the current one is in it (called at the EOF and as
        each pipelined request is taken from the buffer)."""
        if not self._parser.buffer:
            self.keep_alive_allowed = False

    def _wake_drain(self, exc: BaseException | None) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        settle(waiter, exc)

    def _handle_events(self, events: list) -> None:
        self._dispatching = True
        try:
            while True:
                for event in events:
                    kind = type(event)
                    if kind is RequestHead:
                        self._start_request(event)
                    elif kind is Data:
                        self._body_received += len(event.data)
                        self._sink.feed_data(event.data, event.end_of_chunk)
                    else:
                        self._timer.phase = None  # (the timer's stop(), inline: every request)
                        if self._body_pending:  # (most requests have no body)
                            self._body_pending = False
                            self._sink.feed_eof(event.trailers)
                            self._body_rate.stop()
                if self._body_pending and self._timer.phase != "body":
                    self._time_body()
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
                self._start_timer("head", self.config.head_timeout)
        elif self._peer_eof:
            self.close()
        else:
            timer = self._timer
            if timer is NO_TIMER:
                timer = self._make_timer()
            timer.start("keepalive", self.config.keepalive)
            self.idle_until = timer.deadline  # (the oldest idle connections are let go first)
            self.request_forwarded = None  # (an idle connection keeps nothing of its last request)
        return []

    def _start_request(self, head: RequestHead) -> None:
        self._head = head
        self.idle_until = None
        if self._record_requests:
            self._recording = True
            self._start_record(head)
        if head.has_body:
            self._body_received = 0
            self._body_pending = True  # (timed once its head's events are handled: _time_body)
        # (a head without a body comes with its EndOfMessage, which stops the timer)
        self._continue_pending = head.expect_continue
        # (not inline: a kind of connection may override it, uwsgi's with the packet's scheme)
        forwarded = self._resolve_forwarded(head)
        self.request_forwarded = (head, forwarded)
        if (forwarded.error is not None or self.config.refuse_underscores) and not self._peer_checked(head):
            return
        allowed = self.config.allowed_methods
        if allowed is not None and head.method not in allowed:
            self.handle_error(405, f"Method {head.method} not allowed",
                              headers=[("Allow", ", ".join(sorted(allowed)))], close=head.has_body)
            return
        self._sink = self.app.on_request(head) or NULL_SINK

    def _time_body(self) -> None:
        """The request's body is not all in the bytes that brought its head: the rest has
        body_timeout between reads, and a minimum rate. (A body that came whole with its head,
        as most small ones do, needs neither.)"""
        self._start_timer("body", self.config.body_timeout)
        self._watch_body()

    def _start_timer(self, phase: str, seconds: float) -> None:
        timer = self._timer
        if timer is NO_TIMER:
            timer = self._make_timer()
        timer.start(phase, seconds)

    def _make_timer(self) -> ConnectionTimer:
        """The connection's timer, made as it first enters a timed phase (timers.py); it then
        times the wait for the first bytes, if that has not ended."""
        self.config.first_waits.waiting.pop(self, None)
        timer = self._timer = ConnectionTimer(self.loop, self._on_timeout)
        return timer

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
            self.log.warning("Invalid request from %s: %s", peer_ip(self.peername), exc.message)
        self.handle_error(exc.status, exc.message, exc, close=True)


# ``channel.send_response(head, data, body, True, size)`` of a whole answer, compiled (_answer.c):
# the common case of the methods it goes through (to the wait for the next request, or the
# close), which are its reference, and which it calls for any other case or for a subclass that
# replaces one of them. None without the compiled helpers (the kinds then call send_response).
answer_whole = compiled("answer_whole")
if answer_whole is not None:
    compiled("set_channel_type")(ServerHttpProtocol, RequestParser, PassEnd, ConnectionTimer, Head, NULL_SINK,
                                 (HEAD, DONE), SEPARATE_BODY)
    # (the close of a connection its answer closes, and its loss: _accepted.c, whose references are close,
    # _write_last and connection_lost)
    compiled("set_close_parts")(ServerHttpProtocol, RequestParser, DONE, NO_TIMER, GONE_TIMER, NOT_WATCHED, NO_APP)

# ``channel._handle_events(events)``, compiled (_dispatch.c): the events of one whole request
# without a body (the common case of _handle_events and _start_request), which are its reference,
# and what runs for any other events or a subclass that replaces one of them. None without the
# compiled helpers.
handle_events = compiled("handle_events")
if handle_events is not None:
    compiled("set_dispatch_parts")(ServerHttpProtocol, RequestHead, EndOfMessage, NULL_SINK, eager.step_now)

# ``channel.data_received(data)``, compiled (_receive.c) as a method of the class: bytes that are one
# whole request head go to whole_head and handle_events without a Python frame of their own. The
# Python method is its reference, and runs for any other bytes or state.
data_received_py = ServerHttpProtocol.data_received
if compiled("receiver") is not None and whole_head is not None and handle_events is not None:
    ServerHttpProtocol.data_received = compiled("receiver")(ServerHttpProtocol, data_received_py, whole_head,
                                                            handle_events, HttpError)
