"""One ASGI HTTP request/response cycle on the loop.

    protocol.on_request(head) ──► HttpExchange ──task──► app(scope, receive, send)
    receive(): RequestBody (http.request ..., then http.disconnect)
    send(): http.response.start / body / trailers / pathsend / zerocopysend
            ──► ResponseWriter ──► protocol.write() + await protocol.drain()

The head is framed when ``http.response.start`` arrives (a bad header raises in
the app, nothing reaches the wire) and written with the first body piece.
When the last body piece is written the exchange calls
``response_finished(keep_alive)``: the connection may go on to the next
request while the app coroutine is still running (background work).

Errors: an exception before anything was written gives a 500 and the connection
stays usable; after, the connection is closed (the client sees a cut response).
An app that returns without responding gets a 500 too. After the client went
away, ``send()`` raises ``ClientDisconnected`` (an ``OSError``, ASGI HTTP spec
2.4), ``receive()`` returns ``http.disconnect``, and whatever the app raises then
is logged at debug level only.
"""

import asyncio
import os

from server.protocol.accesslog import log_access, minimal_environ
from server.protocol.writer import ResponseWriter

from .body import RequestBody
from .messages import InvalidMessage, body_of, message_type, response_headers, status_of, trailer_lines
from .scope import http_scope

FILE_BLOCK = 256 * 1024  # bytes read per step when a file cannot go by sendfile

# exchange states
START, STARTED, BODY, TRAILERS, DONE = range(5)


class ClientDisconnected(ConnectionResetError):
    """``send()`` on a connection the client has closed."""


class HttpExchange:
    def __init__(self, protocol, head, config):
        self.protocol = protocol
        self.head = head
        self.config = config  # ASGIConfig
        self.body = RequestBody(protocol, head.has_body, self._body_error)
        self.scope = http_scope(protocol, head, asgi_version=config.asgi_version,
                                root_path=config.root_path, state=config.state)
        self._state = START
        self._detached = False  # the client is gone, or the server answered the request itself
        self._writer: ResponseWriter | None = None
        self._head_bytes = b""
        self._status = ""
        self._headers: list = []
        self._trailers = False
        self._trailer_lines: list[bytes] = []
        self._logged = False
        self._started_at = protocol.loop.time()

    # -- running the app ------------------------------------------------------

    async def run(self) -> None:
        try:
            result = await self.config.app(self.scope, self.body.receive, self.send)
        except asyncio.CancelledError:
            self._abandon()
            raise
        except Exception as exc:
            self._app_failed(exc)
            return
        if result is not None:
            self.config.log.error("ASGI app returned %r instead of None for %s %s",
                                  result, self.head.method, self.head.target)
        self._app_returned()

    def _app_failed(self, exc: Exception) -> None:
        log = self.config.log
        what = f"{self.head.method} {self.head.target}"
        if self._detached:
            log.debug("Request %s ended after the client disconnected: %r", what, exc)
        elif self._state == DONE:
            log.exception("Error in ASGI app after its response to %s", what)
        elif self._head_written:
            log.exception("Error in ASGI app during its response to %s: closing the connection", what)
            self._abandon()
        else:
            log.exception("Error in ASGI app handling %s", what)
            self._error_page(exc)

    def _app_returned(self) -> None:
        if self._detached or self._state == DONE:
            return
        what = f"{self.head.method} {self.head.target}"
        if self._head_written:
            self.config.log.error("ASGI app returned without completing its response to %s: "
                                  "closing the connection", what)
            self._abandon()
        else:
            self.config.log.error("ASGI app returned without a response to %s", what)
            self._error_page(None)

    def _error_page(self, exc) -> None:
        self._state = DONE
        self.body.end()
        self.protocol.handle_error(500, exc=exc, close=not self.head.keep_alive)

    def _abandon(self) -> None:
        """The response cannot be completed: close the connection."""
        if self._detached or self._state == DONE:
            return
        self._state = DONE
        self.body.end()
        if self._head_written:
            self._log_access()
        self.protocol.close()
        self.protocol.response_finished(False)

    # -- the protocol's side ---------------------------------------------------

    def disconnected(self) -> None:
        """The client went away (or the server answered the request itself)."""
        self._detached = True
        self.body.end()

    def peer_closed(self) -> None:
        """EOF from the client: ``receive()`` says http.disconnect after the body."""
        self.body.peer_closed()

    def _body_error(self, exc: BaseException) -> bool:
        """The request body failed (client gone, timeout, bad framing).

        Before anything was written the protocol answers (408, 400) and closes;
        once the response has begun the app owns it and the protocol only closes.
        """
        if self._head_written:
            self.body.end()
            return True
        self.disconnected()
        return False

    @property
    def _head_written(self) -> bool:
        return self._state in (BODY, TRAILERS)

    # -- send ------------------------------------------------------------------

    async def send(self, message) -> None:
        kind = message_type(message)
        if self._detached:
            raise ClientDisconnected("The client closed the connection")
        state = self._state
        if state == DONE:
            return  # the response is complete: later messages are ignored (ASGI spec)
        if state == START:
            if kind != "http.response.start":
                raise InvalidMessage(f"Expected 'http.response.start' first, got {kind!r}")
            self._start(message)
        elif kind == "http.response.body" and state in (STARTED, BODY):
            await self._send_body(*body_of(message))
        elif kind == "http.response.trailers" and state == TRAILERS:
            self._send_trailers(message)
        elif kind == "http.response.pathsend" and state == STARTED:
            await self._send_path(message)
        elif kind == "http.response.zerocopysend" and state in (STARTED, BODY):
            await self._send_zerocopy(message)
        else:
            expected = "'http.response.trailers'" if state == TRAILERS else "'http.response.body'"
            raise InvalidMessage(f"Expected {expected}, got {kind!r}")

    def _start(self, message: dict) -> None:
        status, reason = status_of(message)
        headers = response_headers(message)
        head = self.head
        writer = ResponseWriter(head.method, head.version, head.keep_alive and self.protocol.keep_alive_allowed,
                                self.config.server_header)
        self._head_bytes = writer.head(status, reason, headers)  # raises on a bad header
        self._writer = writer
        self._status = f"{status} {reason}"
        self._headers = headers
        self._trailers = bool(message.get("trailers", False))
        self._state = STARTED

    async def _send_body(self, body: bytes, more: bool) -> None:
        writer = self._writer
        data = writer.body(body)
        if self._state == STARTED:
            data = self._head_bytes + data
            self._state = BODY
        if writer.truncated:
            self._finish(data)
            raise InvalidMessage(f"Response body longer than its Content-Length ({writer.length})")
        if not more:
            if self._trailers:
                self._state = TRAILERS
                self.protocol.write(data)
                return
            self._finish(data)
            if not writer.complete:
                raise InvalidMessage(f"Response body shorter than its Content-Length "
                                     f"({writer.sent} of {writer.length} bytes)")
            return
        self.protocol.write(data)
        await self._drain()

    def _send_trailers(self, message: dict) -> None:
        self._trailer_lines.append(trailer_lines(response_headers(message)))
        if not message.get("more_trailers", False):
            self._finish(b"")

    def _finish(self, data: bytes) -> None:
        """Write the last bytes of the response and go on to the next request."""
        writer = self._writer
        end = writer.finish()
        trailers = b"".join(self._trailer_lines)
        if trailers and writer.chunked:
            end = b"0\r\n" + trailers + b"\r\n"
        self.protocol.write(data + end)
        self._state = DONE
        self.body.end()
        self._log_access()
        self.protocol.response_finished(writer.keep_alive)

    async def _drain(self) -> None:
        try:
            await self.protocol.drain()
        except ConnectionError:
            self.disconnected()
            raise ClientDisconnected("The client closed the connection") from None

    # -- files -----------------------------------------------------------------

    async def _send_path(self, message: dict) -> None:
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise InvalidMessage(f"'path' must be an absolute path, not {path!r}")
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            await self._send_file(file, 0, size, more=False)

    async def _send_zerocopy(self, message: dict) -> None:
        file = message.get("file")
        try:
            fd = file.fileno()
        except (AttributeError, OSError, ValueError):
            raise InvalidMessage("'file' must be a file object with a file descriptor") from None
        offset, count = message.get("offset"), message.get("count")
        advance = offset is None
        if advance:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        if count is None:
            count = max(0, os.fstat(fd).st_size - offset)
        if type(offset) is not int or type(count) is not int or offset < 0 or count < 0:
            raise InvalidMessage("'offset' and 'count' must be non-negative ints")
        sent = await self._send_file(file, offset, count, more=bool(message.get("more_body", False)))
        if advance:
            os.lseek(fd, offset + sent, os.SEEK_SET)

    async def _send_file(self, file, offset: int, count: int, more: bool) -> int:
        """Send ``count`` bytes of ``file`` from ``offset`` as body; sendfile where the loop can."""
        writer = self._writer
        if writer.length is not None:
            count = min(count, writer.length - writer.sent)
        head = self._head_bytes if self._state == STARTED else b""
        self._state = BODY
        if writer.no_body or count <= 0:
            count = 0
            self.protocol.write(head)
        elif self.config.sendfile:
            self.protocol.write(head + (b"%x\r\n" % count if writer.chunked else b""))
            await self._sendfile(file, offset, count)
            writer.sent += count
            if writer.chunked:
                self.protocol.write(b"\r\n")
        else:
            await self._send_blocks(file.fileno(), offset, count, head)
        if not more:
            self._finish(b"")
        else:
            await self._drain()
        return count

    async def _sendfile(self, file, offset: int, count: int) -> None:
        try:
            sent = await self.protocol.sendfile(file, offset, count)
        except (ConnectionError, RuntimeError) as exc:
            raise ClientDisconnected("The client closed the connection") from exc
        if sent != count:
            raise InvalidMessage(f"The file is shorter than announced ({sent} of {count} bytes)")

    async def _send_blocks(self, fd: int, offset: int, count: int, head: bytes) -> None:
        loop = self.protocol.loop
        end = offset + count
        while offset < end:
            block = await loop.run_in_executor(None, os.pread, fd, min(FILE_BLOCK, end - offset), offset)
            if not block:
                raise InvalidMessage(f"The file ended {end - offset} bytes early")
            offset += len(block)
            self.protocol.write(head + self._writer.body(block))
            head = b""
            await self._drain()

    # -- access log --------------------------------------------------------------

    def _log_access(self) -> None:
        if not self.config.access_log or self._logged:
            return
        self._logged = True
        head = self.head
        try:
            environ = minimal_environ(head, self.scope["client"])
            log_access(self.config.log, environ, head.headers.items(), self._status, self._headers,
                       self._writer.sent, self.protocol.loop.time() - self._started_at)
        except Exception:
            self.config.log.exception("Access log failed")
