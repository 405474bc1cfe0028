"""The native app kind: ``WebConnection``, one per connection, and ``WebServerHttpProtocol``.

    on_request(head) ──► Request(head[, StreamReader]) ──task──► router → handler → response
         │ returns the StreamReader as the body sink               │
         ▼                                                         ▼
    parser Data ──► StreamReader.feed_data        Response: head + body in one channel.send_response
                                                  other: prepare/write/write_eof through the channel,
                                                  each write + drain(); the channel ends the response

No thread hop: the handler is a task on the worker's loop (one per request, so
``asyncio.current_task()``, ``asyncio.timeout()`` and context variables behave
as in any task; see ``ServerHttpProtocol.start_task`` for when its first step
runs). A request without a body gets no stream unless the handler asks for
``request.content``. A ``Response`` with no ``on_response_prepare`` callback
to await is sent whole at once, with no coroutine of its own (``send_whole``);
everything else goes through ``prepare``/``write_eof``. The body stream pauses reading when the handler
falls behind; ``drain()`` pauses the handler when the client does. Errors: an
exception before the response started gives a 500 (traceback with
``ASYNCWORKER_DEBUG``), after it the connection is closed; a request the
protocol core rejected mid-body (bad framing, 413, timeout) is answered with
its status. A client that went away is not an error.
"""

import asyncio
from dataclasses import dataclass, field

from server.protocol.errors import HttpError
from server.protocol.seam import AppConnection
from server.protocol.server import ServerHttpProtocol

from .app import Application
from .exceptions import HTTPException
from .request import Request
from .response import Response, StreamResponse
from .streams import StreamReader

_APP_HANDLE = Application.handle


@dataclass(slots=True, eq=False)
class WebContext:
    """What every connection of one worker shares."""

    app: object  # Application
    log: object
    tmp_dir: str | None = None
    tasks: set = field(default_factory=set)  # handler tasks in flight (each removes itself when done)

    async def cancel_handlers(self) -> None:
        tasks = [t for t in self.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.difference_update([t for t in self.tasks if t.done()])  # cancelled before they started


class _ReadFlow:
    """Lets the body stream pause and resume reading the socket."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: ServerHttpProtocol):
        self._protocol = protocol

    def pause_reading(self) -> None:
        self._protocol.pause_reading("body")

    def resume_reading(self) -> None:
        self._protocol.resume_reading("body")


class _BodySink:
    """The protocol's view of the body stream: the handler is already running, so
    an error mid-body is delivered to it (``set_exception`` returns True)."""

    __slots__ = ("stream",)

    def __init__(self, stream: StreamReader):
        self.stream = stream

    def feed_data(self, data: bytes, end_of_chunk: bool = False) -> None:
        self.stream.feed_data(data, end_of_chunk)

    def feed_eof(self, trailers=None) -> None:
        self.stream.feed_eof(trailers)

    def set_exception(self, exc: BaseException) -> bool:
        self.stream.set_exception(exc)
        return True


class WebConnection(AppConnection):
    """The native app kind's side of one connection; the handler learns that the client
    left from its body stream and from ``write()``, and waits on ``drain()``."""

    __slots__ = ("context", "log", "_read_flow")

    def __init__(self, context: WebContext, channel):
        self.channel = channel  # (AppConnection's own __init__, inline: a call less per connection)
        self.context = context
        self.log = context.log
        self._read_flow = _ReadFlow(channel)

    def on_request(self, head):
        context = self.context
        channel = self.channel
        if head.has_body:
            stream = StreamReader(self._read_flow, loop=channel.loop, on_first_read=channel.send_continue)
            sink = _BodySink(stream)
        else:  # the request makes an empty stream if the handler asks for one
            stream = sink = None
        request = Request(head, stream, channel, context.app, context.tmp_dir)  # (positional: cheaper)
        request._task = task = channel.start_task(self._serve(request))
        context.tasks.add(task)  # the task removes itself when done
        return sink

    # -- one request ----------------------------------------------------------------

    async def _serve(self, request: Request) -> None:
        context = self.context
        app = context.app
        try:
            try:
                if app._middlewares or type(app).handle is not _APP_HANDLE:
                    response = await app.handle(request)
                else:  # Application.handle without a coroutine of its own
                    head = request.head
                    match_info = app.router.resolve(head.method, head.path)
                    request.match_info = match_info
                    response = await match_info.handler(request)
            except HTTPException as exc:
                response = exc
            except Exception as exc:
                self._handler_failed(request, exc)
                return
            if type(response) is Response and request._response is None and not app.on_response_prepare:
                # The common case: head and body in one write, with no coroutine of its own.
                if self._send_whole(request, response):
                    await self._drain(request)
                return
            response = self._checked(request, response)
            if response is not None and not getattr(response, "upgraded", False):
                await self._finish(request, response)
        finally:
            context.tasks.discard(request._task)

    def _send_whole(self, request: Request, response: Response) -> bool:
        """True: the transport is paused (drain before the task ends)."""
        transport = self.channel.transport
        if transport is None or transport.is_closing():
            return False
        try:
            return response.send_whole(request)
        except Exception as exc:
            self._send_failed(request, exc)
            return False

    async def _drain(self, request: Request) -> None:
        try:
            await self.channel.drain()
        except Exception as exc:
            self._send_failed(request, exc)

    def _handler_failed(self, request: Request, exc: Exception) -> None:
        """The handler raised (other than an HTTPException): answer what can still be answered."""
        if isinstance(exc, HttpError):
            if exc.status >= 500:  # a header that would split the response: details only in the log
                self.log.error("Invalid response to %s %s: %s", request.method, request.raw_path, exc.message)
                self._fail(request, 500, "", None)
            else:  # the body was refused (bad framing or coding, 408, 413...): the client may know why
                self._fail(request, exc.status, exc.message, exc)
            return
        if self._client_gone(request, exc):
            return
        self.log.exception("Error handling request %s %s", request.method, request.raw_path)
        upgraded = request.prepared_response
        if getattr(upgraded, "upgraded", False):  # the connection is not ours: it ends with 1011
            upgraded.handler_failed()
        else:
            self._fail(request, 500, "", exc)

    def _checked(self, request: Request, response):
        """The handler's response, or None when it cannot be sent (and was answered otherwise)."""
        if getattr(response, "upgraded", False):
            return response
        if not isinstance(response, StreamResponse):
            self.log.error("Handler for %s %s returned %r: a handler must return a web.StreamResponse "
                           "(Response, json_response(), ...)", request.method, request.raw_path, response)
            self._fail(request, 500, "", None)
            return None
        if request.prepared_response not in (None, response):
            self.log.error("Handler for %s %s returned a response other than the one it prepared",
                           request.method, request.raw_path)
            self.channel.abort_response()
            return None
        return response

    async def _finish(self, request: Request, response: StreamResponse) -> None:
        """Send what the handler left unsent."""
        try:
            if not response.prepared:
                await response.prepare(request)
            await response.write_eof()
        except Exception as exc:
            self._send_failed(request, exc)

    def _send_failed(self, request: Request, exc: Exception) -> None:
        if self._client_gone(request, exc):
            return
        if isinstance(exc, HttpError):  # a header that would split the response
            self.log.error("Invalid response to %s %s: %s", request.method, request.raw_path, exc.message)
            exc = None  # no traceback of ours in the page, even with debug
        else:
            self.log.exception("Error sending the response to %s %s", request.method, request.raw_path)
        self._fail(request, 500, "", exc)

    def _client_gone(self, request: Request, exc: BaseException) -> bool:
        """A write after the client left: worth a debug line, nothing more."""
        transport = self.channel.transport
        if not isinstance(exc, ConnectionError) or (transport is not None and not transport.is_closing()):
            return False
        self.log.debug("Client disconnected during %s %s", request.method, request.raw_path)
        return True

    def _fail(self, request: Request, status: int, message: str, exc: BaseException | None) -> None:
        """An error page, or a cut response once the head went out (the channel decides)."""
        self.channel.handle_error(status, message, exc, close=not request.head.keep_alive)


class WebServerHttpProtocol(ServerHttpProtocol):
    """A connection serving a native app: ``ServerHttpProtocol`` with the native kind plugged in."""

    __slots__ = ("context",)

    def __init__(self, context: WebContext, config, loop=None, owner=None):
        self.context = context  # (the kind made here: see WSGIServerHttpProtocol)
        ServerHttpProtocol.__init__(self, config, None, loop=loop, owner=owner)
        self.app = self.new_kind()

    def new_kind(self) -> WebConnection:
        return WebConnection(self.context, self)
