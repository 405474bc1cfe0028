"""One ASGI HTTP request/response cycle on the loop.

    ASGIConnection.on_request(head) ──► HttpExchange ──task──► app(scope, receive, send)
    receive(): RequestBody (http.request ..., then http.disconnect)
    send(): http.response.start / body / trailers / pathsend / zerocopysend
            ──► channel.response_head / send_response / send_body / end_response / send_file
                (+ drain() while the transport is paused)

The head is made when ``http.response.start`` arrives (a bad header raises in
the app, nothing reaches the wire) and written with the first body piece, in
one write: a whole response sent as start + one body message is one write.
When the last body piece is written the channel ends the response: the
connection may go on to the next request while the app coroutine is still
running (background work).

Errors: an exception before anything was written gives a 500 and the connection
stays usable; after, the connection is closed (the client sees a cut response).
An app that returns without responding gets a 500 too. After the client went
away, ``send()`` raises ``ClientDisconnected`` (an ``OSError``, ASGI HTTP spec
2.4), ``receive()`` returns ``http.disconnect``, and whatever the app raises then
is logged at debug level only.
"""

import asyncio
import os
from collections.abc import Coroutine

from server.protocol.compiled import compiled
from server.protocol.errors import ClientDisconnected
from server.protocol.files import FileTooShort
from server.protocol.heads import cached_head
from server.protocol.server import ServerHttpProtocol, answer_whole

from .body import RequestBody
from .fields import bytes_pairs
from .messages import (InvalidMessage, body_of, header_pairs, message_kind, response_headers, status_of,
                       trailer_lines)
from .scope import http_scope

# exchange states
START, STARTED, BODY, TRAILERS, DONE = range(5)


class HttpExchange:
    """One request and its response.

    The body sink (``RequestBody``) exists from the start for a request with a
    body; for one without, it is made on the app's first ``receive()`` (most
    apps never call it), in the state the exchange has reached by then.
    """

    __slots__ = ("protocol", "head", "config", "task", "_body", "_body_ended", "_peer_closed",
                 "_state", "_detached", "_head_bytes", "_response", "_trailers")

    def __init__(self, protocol, head, config):
        self.protocol = protocol
        self.head = head
        self.config = config  # ASGIConfig
        self.task = None  # the task running the app, once spawned
        self._body = RequestBody(protocol, True, self._body_error) if head.has_body else None
        self._body_ended = False  # the body was ended before the app asked for it
        self._peer_closed = False  # likewise, the client's EOF
        self._state = START
        self._detached = False  # the client is gone, or the server answered the request itself
        # Set by http.response.start (_start), read only after it:
        #   _response: heads.Head (status, framing); _head_bytes: the head, until written;
        #   _trailers: the trailer lines so far if the response announced trailers, else None.

    @property
    def body(self) -> RequestBody:
        """The request body (``receive()``'s source), made when first needed."""
        body = self._body
        if body is None:
            body = self._body = RequestBody(self.protocol, False, self._body_error)
            if self._body_ended:
                body.end()
            elif self._peer_closed:
                body.peer_closed()
        return body

    def receive(self):
        """The app's ``receive()``."""
        return self.body.receive()

    def _end_body(self) -> None:
        body = self._body
        if body is not None:
            body.end()
        else:
            self._body_ended = True

    # -- running the app ------------------------------------------------------

    async def run(self, scope_peer: tuple, server) -> None:
        """The app's task; ``scope_peer`` and ``server`` are the scope's (see ASGIConnection).

        The scope is made here, as the app starts, not when the head is read: under load
        one loop pass reads hundreds of heads before any of their tasks runs, and what is
        made as a head is read stays alive, and out of the CPU's cache, for the rest of
        that pass. Made here, its objects reuse memory the request before just freed.
        """
        try:
            body = self._body
            receive = self.receive if body is None else body.receive
            config = self.config
            scope = http_scope(self.head, scope_peer, server, config.asgi_version, config.root_path, config.state)
            result = await config.app(scope, receive, self.send if asgi_sender is None else asgi_sender(self))
        except asyncio.CancelledError:
            self._abandon()
            raise
        except Exception as exc:
            self._app_failed(exc)
            return
        finally:
            self.config.tasks.discard(self.task)
            body = self._body  # (_outlive_body, inline: every request)
            if body is not None and self._state == DONE:
                body.outlived()
        if result is not None:
            self.config.log.error("ASGI app returned %r instead of None for %s %s",
                                  result, self.head.method, self.head.target)
        if not (self._detached or self._state == DONE):
            self._app_returned()
            self._outlive_body()

    def _outlive_body(self) -> None:
        """Once the app has returned and the response is done, ``_body_error`` can only end
        the body and answer False (``_head_written`` is over): the body needs this exchange
        no more (see RequestBody.outlived)."""
        body = self._body
        if body is not None and self._state == DONE:
            body.outlived()

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
        self._end_body()
        self.protocol.handle_error(500, exc=exc, close=not self.head.keep_alive)

    def _abandon(self) -> None:
        """The response cannot be completed: close the connection."""
        if self._detached or self._state == DONE:
            return
        self._state = DONE
        self._end_body()
        self.protocol.abort_response()

    # -- the protocol's side ---------------------------------------------------

    def disconnected(self) -> None:
        """The client went away (or the server answered the request itself)."""
        self._detached = True
        self._end_body()

    def peer_closed(self) -> None:
        """EOF from the client: ``receive()`` says http.disconnect after the body."""
        self._peer_closed = True  # (for a body made later, see body)
        if self._body is not None:
            self._body.peer_closed()

    def _body_error(self, exc: BaseException) -> bool:
        """The request body failed (client gone, timeout, bad framing).

        Before anything was written the protocol answers (408, 400) and closes;
        once the response has begun the app owns it and the protocol only closes.
        """
        if self._head_written:
            self._end_body()
            return True
        self.disconnected()
        return False

    @property
    def _head_written(self) -> bool:
        return self._state in (BODY, TRAILERS)

    # -- send ------------------------------------------------------------------

    async def send(self, message) -> None:
        # The common messages in their expected order take the short way; any
        # other message, or one of another type than dict, goes to _send_other.
        if type(message) is dict and not self._detached:
            kind = message.get("type")
            state = self._state
            if kind == "http.response.body":
                if state == STARTED or state == BODY:
                    body = message.get("body", b"")
                    if type(body) is not bytes:
                        body, _ = body_of(message)
                    more = message.get("more_body", False)
                    if state == STARTED and not more and self._trailers is None:
                        # the whole body at once (the common case): head and body in one write
                        protocol = self.protocol
                        if answer_whole is not None:  # (send_response of a whole answer, compiled: server.py)
                            wait = answer_whole(protocol, self._response, self._head_bytes, body, 0)
                        else:
                            wait = protocol.send_response(self._response, self._head_bytes, body, True)
                        self._state = DONE  # (_done, inline: every whole response)
                        if self._body is None:
                            self._body_ended = True
                        else:
                            self._body.end()
                        framing = protocol.framing  # (None: it went whole, as declared)
                        if framing is not None and (framing.truncated or not framing.complete):
                            self._length_error(framing)
                    else:
                        wait = self._write_body(body, more)
                    if wait:
                        await self._drain()
                    return
            elif kind == "http.response.start":
                if state == START:
                    self._start(message)
                    return
        await self._send_other(message)

    async def _send_other(self, message) -> None:
        kind = message_kind(message, self._detached)
        state = self._state
        if state == DONE:
            return  # the response is complete: later messages are ignored (ASGI spec)
        if state == START:
            if kind != "http.response.start":
                raise InvalidMessage(f"Expected 'http.response.start' first, got {kind!r}")
            self._start(message)
        elif kind == "http.response.body" and state in (STARTED, BODY):
            body, more = body_of(message)
            if self._write_body(body, more):
                await self._drain()
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
        """Make the head (raises on a bad status or header, before anything reaches the wire)."""
        status = message.get("status")
        fields = bytes_pairs(message.get("headers"))  # the cache's key: exactly bytes pairs, or None
        if type(status) is not int or not 200 <= status <= 999:
            status_of(message)  # raises, saying why
        if fields is None:
            fields = tuple(header_pairs(message.get("headers")))  # checked, or refused
            normalise = None
        else:
            normalise = header_pairs
        self._response, self._head_bytes = self.protocol.response_head(self.head, status, None, fields,
                                                                       normalise=normalise)
        self._trailers = [] if message.get("trailers", False) else None
        self._state = STARTED

    def _write_body(self, body: bytes, more) -> bool:
        """Write one piece of body (the head with the first); True if the app should wait for a drain."""
        protocol = self.protocol
        ends = not more and self._trailers is None
        if self._state == STARTED:
            self._state = BODY
            data, self._head_bytes = self._head_bytes, b""
            wait = protocol.send_response(self._response, data, body, ends)
        else:
            wait = protocol.send_body(body, ends)
        framing = protocol.framing  # None: the whole body went with the head
        if ends:
            self._done()
        elif not more:
            self._state = TRAILERS
        if framing is not None and (framing.truncated or (ends and not framing.complete)):
            self._length_error(framing)
        return wait

    def _length_error(self, framing) -> None:
        if framing.truncated:  # the channel cut the body and ended the response
            self._done()
            raise InvalidMessage(f"Response body longer than its Content-Length ({framing.length})")
        raise InvalidMessage(f"Response body shorter than its Content-Length "
                             f"({framing.sent} of {framing.length} bytes)")

    def _send_trailers(self, message: dict) -> None:
        self._trailers.append(trailer_lines(response_headers(message)))
        if not message.get("more_trailers", False):
            self.protocol.end_response(b"", b"".join(self._trailers))
            self._done()

    def _done(self) -> None:
        self._state = DONE
        self._end_body()

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
        """Send ``count`` bytes of ``file`` from ``offset`` as body (the channel's one file sender)."""
        protocol = self.protocol
        if self._state == STARTED:
            self._state = BODY
            data, self._head_bytes = self._head_bytes, b""
            protocol.send_response(self._response, data)
        try:
            sent = await protocol.send_file(file, offset, count)
        except FileTooShort as exc:
            raise InvalidMessage(str(exc)) from None
        except (ConnectionError, RuntimeError) as exc:
            self.disconnected()
            raise ClientDisconnected("The client closed the connection") from exc
        if not more:
            protocol.end_response()
            self._done()
        else:
            await self._drain()
        return sent


# The send an app is given, compiled for http.response.start and a whole body (_send.c): send
# above is its reference, and runs for every other message, or for a subclass. What it returns
# for a message it sent is done already, and an asyncio coroutine (create_task takes it). None
# without the compiled helpers.
asgi_sender = compiled("asgi_sender")
if asgi_sender is not None:
    Coroutine.register(compiled("set_sender_parts")(HttpExchange, (START, STARTED, DONE), bytes_pairs, header_pairs,
                                                    ServerHttpProtocol, cached_head))
