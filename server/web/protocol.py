"""WebServerHttpProtocol: ServerHttpProtocol serving a native ``Application`` on the loop.

    on_request(head) ──► Request(head, StreamReader) ──task──► app.handle(request) → response
         │ returns the StreamReader as the body sink           │ prepare/write/write_eof
         ▼                                                     ▼
    parser Data ──► StreamReader.feed_data          protocol.write + await drain()
                                                    ──► response_finished(keep_alive)

No thread hop: the handler is a task on the worker's loop. The body stream
pauses reading when the handler falls behind; ``drain()`` pauses the handler
when the client does. Errors: an exception before the response started gives
a 500 (traceback with ``ASYNCWORKER_DEBUG``), after it the connection is
closed; a request the protocol core rejected mid-body (bad framing, 413,
timeout) is answered with its status. A client that went away is not an error.
"""

import asyncio
import time
from dataclasses import dataclass, field

from server.protocol.accesslog import log_access, minimal_environ
from server.protocol.errors import HttpError
from server.protocol.server import ServerHttpProtocol
from server.protocol.streams import StreamReader

from .exceptions import HTTPException
from .fileresponse import loop_has_sendfile
from .request import Request
from .response import StreamResponse


@dataclass(slots=True, eq=False)
class WebContext:
    """What every connection of one worker shares."""

    app: object  # Application
    log: object
    access_log: bool = False
    tmp_dir: str | None = None
    sendfile: bool = True
    tasks: set = field(default_factory=set)  # handler tasks in flight

    def track(self, task: asyncio.Task) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cancel_handlers(self) -> None:
        tasks = [t for t in self.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


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


class WebServerHttpProtocol(ServerHttpProtocol):
    def __init__(self, context: WebContext, config, **kwargs):
        super().__init__(config, **kwargs)
        self.context = context
        self.use_sendfile = context.sendfile and loop_has_sendfile(self.loop)
        self._read_flow = _ReadFlow(self)

    def on_request(self, head):
        stream = StreamReader(self._read_flow, loop=self.loop, on_first_read=self.send_continue)
        request = Request(head, stream, self, self.context.app, tmp_dir=self.context.tmp_dir)
        self.context.track(self.loop.create_task(self._serve(request)))
        if not head.has_body:
            stream.feed_eof()
            return None
        return _BodySink(stream)

    # -- one request ----------------------------------------------------------------

    async def _serve(self, request: Request) -> None:
        started = time.monotonic()
        response = await self._run_handler(request)
        if response is None:
            return
        if getattr(response, "upgraded", False):
            self._log(request, "101 Switching Protocols", [], 0, started)
            return
        if not await self._finish(request, response):
            return
        writer = response._writer
        self._log(request, f"{response.status} {response.reason}", writer.headers, writer.sent, started)
        self.response_finished(writer.keep_alive)

    async def _run_handler(self, request: Request):
        """The handler's response, or None when the request was answered otherwise."""
        try:
            response = await self.context.app.handle(request)
        except HTTPException as exc:
            response = exc
        except HttpError as exc:
            if exc.status >= 500:  # a header that would split the response: details only in the log
                self.log.error("Invalid response to %s %s: %s", request.method, request.raw_path, exc.message)
                self._fail(request, 500, "", None)
            else:  # the body was refused (bad framing or coding, 408, 413...): the client may know why
                self._fail(request, exc.status, exc.message, exc)
            return None
        except Exception as exc:
            if self._client_gone(request, exc):
                return None
            self.log.exception("Error handling request %s %s", request.method, request.raw_path)
            if not getattr(request.prepared_response, "upgraded", False):  # else the connection is not ours
                self._fail(request, 500, "", exc)
            return None
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
            self._abandon()
            return None
        return response

    async def _finish(self, request: Request, response: StreamResponse) -> bool:
        """Send what the handler left unsent; False if the response could not be completed."""
        try:
            if not response.prepared:
                await response.prepare(request)
            await response.write_eof()
            return True
        except Exception as exc:
            if self._client_gone(request, exc):
                return False
            if isinstance(exc, HttpError):  # a header that would split the response
                self.log.error("Invalid response to %s %s: %s", request.method, request.raw_path, exc.message)
                exc = None  # no traceback of ours in the page, even with debug
            else:
                self.log.exception("Error sending the response to %s %s", request.method, request.raw_path)
            self._fail(request, 500, "", exc)
            return False

    def _client_gone(self, request: Request, exc: BaseException) -> bool:
        """A write after the client left: worth a debug line, nothing more."""
        transport = self.transport
        if not isinstance(exc, ConnectionError) or (transport is not None and not transport.is_closing()):
            return False
        self.log.debug("Client disconnected during %s %s", request.method, request.raw_path)
        return True

    def _fail(self, request: Request, status: int, message: str, exc: BaseException | None) -> None:
        if self._response_started:
            self._abandon()
            return
        self.handle_error(status, message, exc, close=not request.head.keep_alive)

    def _abandon(self) -> None:
        """The response cannot be completed: the client sees a cut response."""
        self.close()
        self.response_finished(False)

    def _log(self, request: Request, status: str, headers, sent: int, started: float) -> None:
        if not self.context.access_log:
            return
        head = request.head
        try:
            log_access(self.log, minimal_environ(head, self.client_address(head)), head.headers.items(), status,
                       headers, sent, time.monotonic() - started)
        except Exception:
            self.log.exception("Access log failed")
