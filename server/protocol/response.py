"""ResponseChannel: the response side of an HTTP/1.1 connection, the one path every app kind answers through.

    app kind ──response_head(request, status, reason, fields[, body_size])──► (Head, bytes)   (any thread)
             ──send_response(head, bytes, body, end)──► one write: head + first piece (all of it when end)
             ──send_body(data, end) / end_response(trailers) / send_file(...)──► framed writes
             ──abort_response() / handle_error(status, ...)──► a cut response, or an error page
    every end ──► one record: access log line, post_request hook (accesslog.py) ──► response_finished()

The head of every response, error pages and the WebSocket 101 included, comes
from the worker's one ``HeadCache`` (heads.py: one serialiser, every check once);
its body is framed by ``BodyFraming`` (Content-Length enforced, chunked, or
delimited by closing), made only for a body that is not sent whole with its head.
What an app kind learns back: ``send_*`` returns True when the transport is
paused (``await drain()`` then); ``framing`` says what was sent (``sent``,
``truncated``, ``complete``).

The connection writes on the loop thread, with one exception: a kind on another
thread (WSGI) makes its heads there (pure) and hands the sends to the loop, but a
whole response it may write itself, through a lease of the socket taken on the
loop (``lease_socket``, lease.py), and the loop then ends it (``whole_written``).
"""

import os
import traceback
from http import HTTPStatus

from .accesslog import LoggedRequest, LoggedResponse, minimal_environ, now, record_request_end, run_hook
from .compiled import compiled
from .files import body_span, send_file
from .heads import cached_head
from .lease import SocketLease, plain_socket_fd

# A whole body of this size or more is written beside its head (``writelines``: one writev on
# uvloop, the rest kept by reference if the socket takes part) rather than after a copy of
# both into one bytes object; below it, the copy costs less than the vector write.
SEPARATE_BODY = 16 * 1024


class ResponseChannel:
    """Mixed into ``ServerHttpProtocol``: what it offers an app kind to answer the request in flight."""

    __slots__ = ()  # its state is in the connection's slots (``server.py``)

    def _init_response(self, config) -> None:
        # The response in flight: its head, its body framing (None while it has none, or
        # when it went whole with its head).
        self._response = None
        self.framing = None
        self._truncation_told = False
        self.log_environ = None  # a kind's own environ for the record of this request (WSGI)
        self._record_requests = config.access_log or config.hooks is not None
        self._recording = False  # the request in flight gets a record when its response ends
        self._started = 0.0
        # The socket's descriptor (-1: none to write to, see lease.py): given at accept
        # (workers/listeners.py), else looked for at the first lease (None until then).
        self.socket_fd: int | None = None
        self._kept_lease: SocketLease | None = None  # the last response's lease, for the next (_keep_lease)

    # -- making heads --------------------------------------------------------------

    def response_head(self, request, status: int | str, reason, fields, body_size: int | None = None,
                      close: bool = False, normalise=None):
        """``(Head, bytes)`` of a response to ``request``; raises ``ResponseHeaderError`` on an
        unsafe head, before anything is written. Pure: callable from any thread."""
        keep_alive = request.keep_alive and self.keep_alive_allowed and not close
        method = request.method
        heads = self.config.heads
        try:  # the cache's hit, in one call (HeadCache.head is the whole story)
            hit = cached_head(heads.cache, status, reason, fields, method == "HEAD", request.version, keep_alive,
                              body_size)
        except TypeError:
            hit = None
        if hit is None:
            return heads.head(status, reason, fields, method, request.version, keep_alive, body_size, normalise)
        return hit

    # -- sending (loop thread) -------------------------------------------------------

    def send_response(self, head, data: bytes, body: bytes = b"", end: bool = False, size: int = 0) -> bool:
        """Write a head (``data``, its bytes) with the first piece of its body, or all of it
        when ``end``. ``size``: the whole body's size a sized head was made for."""
        self._response = head
        if end and (len(body) == head.whole_length or head.sized):  # whole, unframed: the common case
            self.framing = None
            if len(body) < SEPARATE_BODY:  # (dropped if the client is gone or the write side shut)
                self.write_answer(data + body, b"", not head.keep_alive)  # (positional: no keyword names)
            else:
                self.write_answer(data, body)
            if self._recording:
                self._record(len(body))
            response_finished(self, head.keep_alive)
            return False
        self._truncation_told = False
        framing = self.framing = head.framing(size)
        return self._send_framed(data + framing.body(body), framing, end)

    def lease_socket(self) -> SocketLease | None:
        """At an app's dispatch: a lease for its thread to write a whole response itself
        (lease.py), or None where it may not (TLS, a closing transport, no descriptor left)."""
        fd = self.socket_fd
        transport = self.transport
        if transport is None or transport.is_closing():
            return None
        kept = self._kept_lease
        if kept is not None:  # (the lease of this connection's last response: _keep_lease)
            self._kept_lease = None
            return kept
        if fd is None:
            fd = self.socket_fd = plain_socket_fd(transport)
        if fd < 0:
            return None
        try:
            return SocketLease(os.dup(fd))
        except OSError:  # (out of descriptors: the loop writes)
            return None

    def whole_written(self, head, rest: bytes, size: int, lease: SocketLease | None = None) -> None:
        """A whole response (head and body of ``size`` bytes) was written by its app thread
        through a lease, all but ``rest``: write that, and end the response. ``lease``: the
        one it was written through, kept for the connection's next response."""
        if lease is not None:  # (before the end: a pipelined request it starts takes it)
            self._keep_lease(lease)
        self._response = head
        self.framing = None
        if rest:
            self.write(rest)
        if self._recording:
            self._record(size)
        response_finished(self, head.keep_alive)

    def _keep_lease(self, lease: SocketLease) -> None:
        """Keep ``lease`` for this connection's next response: no dup and no close for a
        client that sends a request at a time. A worker keeps one, its last connection's."""
        keeper = self.config.lease_keeper
        other = keeper.channel
        if other is not self:
            if other is not None:
                other.drop_kept_lease()
            keeper.channel = self
        self._kept_lease = lease

    def drop_kept_lease(self) -> None:
        """Close the lease this connection keeps, if any: as another connection keeps one, and
        before the connection closes (its descriptor would hold the socket open, no FIN)."""
        lease = self._kept_lease
        if lease is not None:
            self._kept_lease = None
            lease.release()
        keeper = self.config.lease_keeper
        if keeper.channel is self:
            keeper.channel = None

    def send_body(self, data: bytes, end: bool = False) -> bool:
        """Write one more piece of the body (after ``send_response``)."""
        framing = self.framing
        return self._send_framed(framing.body(data), framing, end)

    def send_pieces(self, pieces: list, size: int, end: bool = False) -> bool:
        """Write more pieces of the body (``size`` bytes in all), each as it is: no join, no
        copy (one chunk for them all when the body is chunked; uvloop writes them, with the
        rest of this pass's bytes of the connection, in one writev). The list is the
        connection's from then on."""
        framing = self.framing
        framed = framing.pieces(pieces, size)
        if framed:
            self.write_corked_pieces(framed, sum(map(len, framed)), end or framing.truncated)
        return self._send_framed(b"", framing, end)

    def end_response(self, data: bytes = b"", trailers: bytes | None = None) -> None:
        """Write the last piece of the body and its end (with trailer lines, if the body is
        chunked) and go on to the next request."""
        framing = self.framing
        self._end_framed(framing.body(data) if data else b"", framing, trailers)

    def _end_framed(self, data: bytes, framing, trailers: bytes | None = None) -> None:
        end = framing.finish()
        if trailers and framing.chunked:
            end = b"0\r\n" + trailers + b"\r\n"
        self.write_answer(data + end, last=not framing.keep_alive)
        self._response_done(framing.keep_alive)

    async def send_file(self, file, offset: int, count: int, end: bool = False) -> int:
        """Send ``count`` bytes of ``file`` from ``offset`` as body (sendfile where the loop
        has it); returns the bytes sent. The head went out before (``send_response``)."""
        framing = self.framing
        count = body_span(framing, count)
        if count:
            await send_file(self, framing, file, offset, count)
        if end:
            self.end_response()
        return count

    def abort_response(self) -> None:
        """The response cannot be completed: the client sees it cut (the connection closes)."""
        self.close()
        self._response_done(False)

    def _send_framed(self, data: bytes, framing, end: bool) -> bool:
        if framing.truncated:
            self._warn_truncated(framing)
            end = True
        if end:
            self._end_framed(data, framing)
            return False
        if data:
            self.write_corked(data)
        return self.transport is None or self.writing_paused

    def _warn_truncated(self, framing) -> None:
        if not self._truncation_told and self.log is not None:
            self._truncation_told = True
            head = self._head
            self.log.warning("Response to %s %s longer than its Content-Length (%s): truncated",
                             head.method if head else "-", head.target if head else "-", framing.length)

    # -- error pages -------------------------------------------------------------------

    def handle_error(self, status: int, message: str = "", exc: BaseException | None = None,
                     headers=None, close: bool = True) -> None:
        """Answer the current request (or unparsed bytes) with an error page; once a
        response has begun, it is too late for one: the connection is closed."""
        if self.transport is None or self.write_closed:
            return
        if self._response_started:
            self.abort_response() if self._head is not None else self.close()
            return
        if self.config.debug and exc is not None and status >= 500:
            message = "".join(traceback.format_exception(exc))
        reason = HTTPStatus(status).phrase
        body = ((message or reason) + "\n").encode("utf-8")
        request = self._head if self._head is not None else _NO_REQUEST
        close = close or not self.keep_alive_allowed or not request.keep_alive
        fields = (("Content-Type", "text/plain; charset=utf-8"), *(headers or ()))
        head, data = self.response_head(request, status, reason, fields, len(body), close=close)
        if self._head is None:  # unparsed bytes: no request to go on from
            self.write(data + body)
            self.close()
            return
        self.send_response(head, data, body, end=True, size=len(body))

    # -- the record of each request ------------------------------------------------------

    def switched_protocols(self, data: bytes, fields) -> None:
        """A 101 was written (``data``): record it; ``upgrade()`` hands the connection over."""
        self.write(data)
        self._response = _SwitchingProtocols(fields)
        self.framing = None
        if self._recording:
            self._record(0)

    def _response_done(self, keep_alive: bool) -> None:
        framing = self.framing
        if self._recording and self._response is not None and framing is not None:
            self._record(framing.sent)
        response_finished(self, keep_alive)

    def _start_record(self, request) -> None:
        """At a request's start: its clock, and gunicorn's pre_request hook (for kinds on the loop)."""
        self._started = now()
        hooks = self.config.hooks
        if hooks is not None and hooks.pre_request is not None and not self.app.runs_hooks:
            run_hook(hooks, hooks.pre_request, self.log, LoggedRequest(request, self._client_of(request)))

    def _record(self, sent: int) -> None:
        request, response = self._head, self._response
        self._recording = False  # once per request
        config = self.config
        hooks = config.hooks
        if hooks is not None and self.app.runs_hooks:
            hooks = None  # the kind runs them itself, on its own thread (WSGI)
        client = self._client_of(request)
        environ = self.log_environ or minimal_environ(request, client)
        record_request_end(self.log, hooks, config.access_log, LoggedRequest(request, client), environ,
                           LoggedResponse(f"{response.status} {response.reason}", sent, response.headers),
                           now() - self._started)

    def _client_of(self, request):
        return self.forwarded(request).client


class _NoRequest:
    """What an error page answering unparsed bytes is framed for."""

    method = "GET"
    version = (1, 1)
    keep_alive = False
    target = path = query = ""


_NO_REQUEST = _NoRequest()


class _SwitchingProtocols:
    status = 101
    reason = "Switching Protocols"

    def __init__(self, headers):
        self.headers = headers


def _response_finished(channel, keep_alive: bool) -> None:
    channel.response_finished(keep_alive)


# ``channel.response_finished(keep_alive)``, where every end of a response goes on: compiled
# (_answer.c, answer_whole's end, registered in server.py) for the common case, which calls the
# method for any other, and for a class that replaces it.
response_finished = compiled("response_finished") or _response_finished
