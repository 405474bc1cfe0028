"""The seam between a connection and an app kind: the two interfaces, written down.

    connection (HTTP/1.1: ServerHttpProtocol; a test connection; an HTTP/2 stream)
        │  parsing, timers, flow control, keep-alive, pipelining, teardown
        │
        ├──► AppConnection.on_request(head) ──► a body sink (feed_data/feed_eof/set_exception)
        │    on_disconnect / on_input_end / on_pause_writing / on_resume_writing
        │
        ◄─── Channel: response_head, send_response, send_body, end_response, send_file,
             abort_response, handle_error, drain, upgrade; forwarded, start_task, ...

An app kind (WSGI, ASGI, native) is a factory ``kind(channel) -> AppConnection``
that the connection calls once; it never subclasses the connection nor touches
its private attributes. ``AppConnection`` is the base of each kind's side;
``BodySink`` and ``Channel`` are documentation and type hints (``ServerHttpProtocol``
implements ``Channel`` itself, with ``ResponseChannel`` for the response side).
"""

from typing import Any, Protocol


class BodySink(Protocol):
    """Where the connection delivers a request's body."""

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None: ...

    def feed_eof(self, trailers=None) -> None: ...

    def set_exception(self, exc: BaseException) -> bool:
        """The body failed (client gone, timeout, bad framing). True: the app already owns the
        response, the connection only closes; False: the connection answers (408, 400...)."""


class AppConnection:
    """The app kind's side of one connection: the base of each kind's, which overrides
    what it needs (the others are no-ops)."""

    # Slots: ``ServerHttpProtocol`` is an AppConnection too (its own app) and has no dict.
    # A kind's subclass without ``__slots__`` has one as usual.
    __slots__ = ("channel",)
    runs_hooks = False  # True: the kind calls gunicorn's request hooks itself (on its own thread)
    # False: while the app answers a whole request whose answer closes the connection, the
    # kind needs nothing read (not even the client's leaving: it shows when the answer is
    # written), so a connection served on its socket at accept stays there.
    reads_while_running = True

    def __init__(self, channel):
        self.channel = channel

    def on_request(self, head) -> BodySink | None:
        """Start answering ``head`` (a ``RequestHead``); the sink of its body, if it has one."""
        raise NotImplementedError

    def on_disconnect(self) -> None:
        """The client went away while a request was in flight."""

    def on_input_end(self) -> None:
        """The client's end of input (a half close) while a request is in flight."""

    def on_pause_writing(self) -> None:
        """The transport's buffer is full (``channel.writing_paused`` says so too)."""

    def on_resume_writing(self) -> None:
        """The transport takes writes again."""


# The app kind of a channel that will serve no more (a lost connection with nothing in
# flight, an answered HTTP/2 stream): no-ops. A channel and its kind's object refer to each
# other; putting this in place of the kind lets the two go without the garbage collector.
NO_APP = AppConnection(None)


class Channel(Protocol):
    """What a connection offers the app kind, per request in flight (loop thread unless said)."""

    loop: Any
    log: Any
    config: Any  # ServerConfig: debug, server_header, heads, access_log, hooks, sendfile
    sockname: Any
    keep_alive_allowed: bool
    writing_paused: bool
    exchange: Any  # the kind's object for the request in flight; dropped when it is answered
    log_environ: dict | None  # the WSGI environ, for the access log record of this request
    framing: Any  # the BodyFraming of the response in flight (None when it went whole)
    # (head, forwarded(head)) of the request in flight, once made: a kind looks at it first
    request_forwarded: tuple | None

    # the request
    def forwarded(self, head): ...  # client, scheme, host, forwarder fields (trusted proxies)
    def start_task(self, coro): ...
    def send_continue(self) -> None: ...
    def pause_reading(self, reason: str) -> None: ...
    def resume_reading(self, reason: str) -> None: ...

    # the response
    def response_head(self, request, status: int | str, reason, fields, body_size=None, close=False,
                      normalise=None):
        """``(Head, bytes)``; raises on an unsafe head. Any thread. ``reason`` None: the
        status's standard phrase; ``heads.STATUS_LINE``: ``status`` is a whole status line."""

    def send_response(self, head, data: bytes, body: bytes = b"", end: bool = False, size: int = 0) -> bool:
        """Head and first body piece; True: ``await drain()`` before more."""

    def send_body(self, data: bytes, end: bool = False) -> bool: ...

    def send_pieces(self, pieces: list, size: int, end: bool = False) -> bool:
        """``send_body`` of several pieces (``size`` bytes in all), joined only if need be."""

    def end_response(self, data: bytes = b"", trailers: bytes | None = None) -> None: ...

    async def send_file(self, file, offset: int, count: int, end: bool = False) -> int: ...

    async def drain(self) -> None: ...

    def abort_response(self) -> None: ...

    def lease_socket(self):
        """A ``SocketLease`` for an app thread to write a whole response itself (lease.py),
        or None; the loop ends that response with ``whole_written(head, rest, size, lease)``."""

    def whole_written(self, head, rest: bytes, size: int, lease=None) -> None: ...

    def handle_error(self, status: int, message: str = "", exc=None, headers=None, close=True) -> None: ...

    def switched_protocols(self, data: bytes, fields) -> None: ...

    def upgrade(self, receiver) -> bytes: ...
