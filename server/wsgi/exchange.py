"""One WSGI request/response, run on a pool thread, written by the loop.

    loop: dispatch() ──► pool thread: app(environ, start_response) → body pieces
    pool thread: channel.response_head() (pure) ──call_in_loop──► loop: channel.send_response / send_body

The socket is only touched by the loop, but for a whole response (head and body
known at once) on a plain socket: its thread writes it through the lease of the
socket the loop gave it at dispatch (``channel.lease_socket()``, see
protocol/lease.py), once the app is cleaned up, and the loop ends it (what the
socket did not take, the record, the next request). The app thread makes the head through
the channel (checked and cached there, a bad header raises in the thread before
anything is handed over) and hands body pieces over to a per-response spool
(``spool.py``), which the loop writes out as the transport takes it: memory up
to ``response_spool_memory``, then a temporary file. So the thread finishes as
fast as the app produces, whatever the client's speed; it waits on backpressure
(the transport paused, or more than ``INFLIGHT_LIMIT`` bytes not yet written)
only once the response holds ``response_spool_max`` bytes in its spool or the
worker's spools hold ``response_spool_budget``. A whole response known at once
(a list or tuple body) goes over in one hand-off with a Content-Length; a
``wsgi.file_wrapper`` file goes to the loop, which sends its own copy of it by
the channel's one file sender while the thread returns.

Pieces of a streamed body are coalesced, never held back: a piece waits for no
other, but pieces produced while the loop has not yet taken the previous ones
join them, and the loop writes them all with one call (a fast generator costs
one loop hop per batch instead of one per piece).

The iterable's ``close()`` is always called when the app is done producing
(not when the client has read it all), also when the client went away (writes
then raise ``ClientDisconnected`` inside the server, never in the log as an
error). The response ends (access log record, next pipelined request) once its
spool or file is written out; a client that goes away drops the spool. An
exception before the head is sent gives a 500 and the connection stays usable;
after it, the connection is closed once what the app produced is written (the
client sees a cut body).
gunicorn's request hooks run on the app thread, around the app.
"""

from server.protocol.accesslog import LoggedRequest, LoggedResponse, run_hook
from server.protocol.compiled import compiled
from server.protocol.errors import ClientDisconnected
from server.protocol.heads import STATUS_LINE
from server.protocol.server import answer_whole

from .body import EMPTY_INPUT, InputClosed
from .environ import build_environ
from .filewrapper import FileWrapper, LoopFileSend, own_copy
from .spool import BodyHandover


class WSGIExchange:
    __slots__ = ("protocol", "connection", "head", "config", "pool", "_body", "_final", "_file_send", "_environ",
                 "_status", "_headers", "_response", "_head_handed", "_handed", "_lease",
                 "_aborted")  # one per request: no dict

    def __init__(self, connection, head, config):
        self.protocol = connection.channel
        self.connection = connection  # the WSGIConnection: its per-connection environ cache
        self.head = head
        self.config = config  # WSGIConfig
        self.pool = config.pool
        self._body: BodyHandover | None = None  # made for the first piece before the last (_handover)
        self._aborted = False  # loop: the client is gone
        self._final: tuple | None = None  # the last call, handed over once the app is cleaned up
        self._file_send: LoopFileSend | None = None  # a file body the loop sends
        self._environ: dict | None = None
        self._status: str | None = None
        self._headers: list | None = None
        self._response = None  # (Head, its bytes) until handed over, then the Head
        self._head_handed = False
        self._handed = 0  # body bytes handed over
        self._lease = None  # the thread's own descriptor of the socket (lease.py), from dispatch to the end

    @classmethod
    def template(cls, config) -> "WSGIExchange":
        """An exchange never dispatched, of which each request's is a copy (``copy_of``, see
        protocol/copies.py) given its connection and head: the stores of ``__init__`` but three
        in one compiled call (``WSGIConnection.on_request``)."""
        exchange = object.__new__(cls)
        exchange.__init__(_NO_CONNECTION, None, config)
        return exchange

    # -- loop side ----------------------------------------------------------

    def dispatch(self, wsgi_input, content_length: int | None) -> None:
        config = self.config
        answers = config.answers
        if len(answers) == config.dispatched:  # every exchange before is answered (see WSGIConfig)
            answers.clear()  # (no thread appends to it now: each appends once, and all have)
            config.dispatched = 1
            if self.head.keep_alive and self.protocol.keep_alive_allowed:  # (a last answer goes
                self._lease = self.protocol.lease_socket()  # from the loop, with its FIN: cork.py)
        else:
            config.dispatched += 1
        if run_exchange is not None:  # (run, compiled: see the end of this module)
            self.pool.submit(run_exchange, self, wsgi_input, content_length)
        else:
            self.pool.submit(self.run, wsgi_input, content_length)

    def abort(self) -> None:
        self._aborted = True  # (before the handover is looked at: see _handover)
        body = self._body
        if body is not None:
            body.abort()
        file_send = self._file_send
        if file_send is not None and file_send.task is not None:
            file_send.task.cancel()  # (its end closes the loop's copy of the file)

    def pause(self) -> None:
        body = self._body
        if body is not None:
            body.pause()

    def resume(self) -> None:
        body = self._body
        if body is not None:
            body.resume()

    def _send_on_loop(self, data, end: bool, size: int = 0) -> None:
        """Loop side: ``data`` (bytes; the head's whole body ``size`` when it is sized), or a
        list of pieces of ``size`` bytes taken from the spool, written as they are."""
        pieces = type(data) is list
        if type(self._response) is tuple:  # the head, with the first piece unless there are pieces
            if not pieces:
                self._head_on_loop(data, end, size)
                return
            self._head_on_loop(b"", False, 0)
        channel = self.protocol
        if channel.transport is None:
            return
        if pieces:
            channel.send_pieces(data, size, end)
        elif end:
            channel.end_response(data)
        else:
            channel.send_body(data)

    def _head_on_loop(self, data: bytes, end: bool, size: int) -> None:
        """Loop side: the head, with ``data``, its first body piece (all of it when ``end``;
        ``size``: the whole body's size a sized head was made for). The one place the head
        goes out; a whole answer handed over at once comes straight here."""
        channel = self.protocol
        if channel.transport is None:
            return
        head, head_bytes = self._response
        self._response = head
        channel.log_environ = self._environ
        if end and answer_whole is not None:  # (send_response of a whole answer, compiled: server.py)
            answer_whole(channel, head, head_bytes, data, size)
        else:
            channel.send_response(head, head_bytes, data, end, size)

    def _whole_written_on_loop(self, head, rest: bytes, size: int, lease) -> None:
        channel = self.protocol
        if channel.transport is None:
            lease.release()
            return
        channel.log_environ = self._environ
        channel.whole_written(head, rest, size, lease)

    def _start_file_on_loop(self, file, offset: int, count: int) -> None:
        """Loop side: the head, then the file by the channel's file sender."""
        self._send_on_loop(b"", False, count)
        self._file_send.start(file, offset, count)

    # -- app thread side ----------------------------------------------------

    def run(self, wsgi_input, content_length: int | None) -> None:
        config = self.config
        result = environ = None
        hooks = self.protocol.config.hooks
        head = self.head
        known = self.protocol.request_forwarded  # (what forwarded(head) looks at first, here: a call less)
        forwarded = known[1] if known is not None and known[0] is head else self.protocol.forwarded(head)
        request = LoggedRequest(head, forwarded.client) if hooks is not None else None
        try:
            self._environ = environ = build_environ(  # (inline: a call less per request)
                self.connection.client_environ(head, forwarded), head,
                wsgi_input if wsgi_input is not None else EMPTY_INPUT, content_length, forwarded.fields,
                forwarded.host)
            if request is not None and hooks.pre_request is not None:
                run_hook(hooks, hooks.pre_request, config.log, request)
            result = config.app(environ, self.start_response)
            self._send_result(result)
        except Exception as exc:
            self._app_failed(exc)
        finally:
            if wsgi_input is not None or type(result) is not list:  # (a list and no body: nothing to close)
                _close(result, wsgi_input, config.log)
        try:
            self._hand_over_final()
        finally:
            if self._lease is not None:
                self._lease.release()
        if request is not None and hooks.post_request is not None:
            response = LoggedResponse(self._status or "", self._handed, self._headers or [])
            run_hook(hooks, hooks.post_request, config.log, request, environ, response)

    def _app_failed(self, exc: Exception) -> None:
        """What ``run`` does with what the app, or the making of its answer, raised."""
        if isinstance(exc, ClientDisconnected):
            self.config.log.debug("Client disconnected during the response to %s %s", self.head.method,
                                  self.head.target)
        else:
            self._fail(exc)

    def start_response(self, status: str, headers: list, exc_info=None):
        if exc_info is not None:
            try:
                if self._head_handed:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        if not isinstance(headers, list):
            raise TypeError("response headers must be a list")
        self._status = status
        self._headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy write() callable of start_response (PEP 3333)."""
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        self._send_piece(data)

    def _make_head(self, body_size: int | None = None):
        """The head of the app's status and headers (raises on an unsafe one)."""
        if self._status is None:
            raise AssertionError("the application did not call start_response()")
        headers = self._headers
        fields = tuple(headers) if type(headers) is list else headers  # a key the head cache can keep
        # (the status line as it came, split by the head cache once for all its responses)
        self._response = self.protocol.response_head(self.head, self._status, STATUS_LINE, fields, body_size)
        return self._response[0]

    def _send_result(self, result) -> None:
        if isinstance(result, (list, tuple)):
            if len(result) == 1 and type(result[0]) is bytes:  # (the common case: no join, no copy)
                body = result[0]
            else:
                body = b"".join(_checked(piece) for piece in result)
            if self._response is None:  # the whole response in one hand-off, with its length
                size = len(body)
                if self._status is None:
                    self._make_head(size)  # (raises)
                # (what _make_head does, inline: every whole response; start_response took a list)
                self._response = response = self.protocol.response_head(self.head, self._status, STATUS_LINE,
                                                                        tuple(self._headers), size)
                head = response[0]
                if head.no_body or (not head.sized and head.length is not None and size > head.length):
                    body = self._cut(head, body)  # (raises _TooLong past a declared length)
                else:  # (what _cut and _send do, inline: every whole response)
                    self._handed = size
                if self._aborted:
                    raise ClientDisconnected()
                self._head_handed = True
                self._final = (body, size)  # see _hand_over_final
                return
            self._send_piece(body)
        elif isinstance(result, FileWrapper) and self._send_file(result):
            return
        else:
            self._send_stream(iter(result))
        self._finish()

    def _send_stream(self, pieces) -> None:
        """Hand over a streamed body's pieces, each as it comes. Once the first is over (the
        head made, the hand-over in place), the others go straight to the hand-over, unless
        they are to be dropped (no body) or may pass the app's Content-Length (to be cut)."""
        for piece in pieces:
            self._send_piece(_checked(piece))
            if self._body is not None:
                break
        else:
            return
        head = _head_of(self._response)
        limit = head.length if not head.sized else None
        hand_over = self._body.hand_over
        for piece in pieces:
            if type(piece) is not bytes:
                piece = _checked(piece)
            if head.no_body or (limit is not None and self._handed + len(piece) > limit):
                self._send_piece(piece)
            elif piece:
                self._handed += len(piece)
                hand_over(piece)

    def _cut(self, head, data: bytes) -> bytes:
        """``data`` as far as the declared Content-Length still takes it; raises ``_TooLong``
        (after handing over what fits) past it."""
        if head.no_body:
            return b""
        length = head.length if not head.sized else None
        if length is not None and self._handed + len(data) > length:
            data = data[:length - self._handed]
            self._warn_truncated()
            self._handed += len(data)
            if data:
                self._send(data)
            raise _TooLong()
        self._handed += len(data)
        return data

    def _warn_truncated(self) -> None:
        self.config.log.warning("Response to %s %s longer than its Content-Length: truncated",
                                self.head.method, self.head.target)

    def _send_piece(self, data: bytes) -> None:
        if not data:
            return
        head = self._make_head() if self._response is None else _head_of(self._response)
        self._send(self._cut(head, data))

    def _finish(self) -> None:
        if self._response is None:
            self._make_head(0)
        self._send(b"", final=True)

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a regular file with its length: the loop sends its own copy of it by the
        channel's file sender, and the thread goes on at once."""
        span = None if self._head_handed else wrapper.sendfile_span()  # (after write(): iterated, in order)
        if span is None:
            return False
        file = own_copy(wrapper.filelike)
        if file is None:
            return False
        offset, count = span
        try:
            head = self._make_head(count)
            self._head_goes()
        except BaseException:
            file.close()
            raise
        if head.length is not None and not head.sized:
            count = min(count, head.length)
        self._file_send = LoopFileSend(self.protocol, self.config.log, f"{self.head.method} {self.head.target}")
        self.pool.call_in_loop(self._start_file_on_loop, file, offset, count)
        self._handed += count
        self._final = _LoopCall(self._file_send.produced)
        return True

    def _head_goes(self) -> None:
        """Something of the response is handed to the loop: the head is no longer ours to
        replace (an error now cuts the response); refused once the client is gone."""
        if self._aborted:
            raise ClientDisconnected()
        self._head_handed = True

    def _send(self, data: bytes, final: bool = False, size: int = 0) -> None:
        """Hand bytes to the loop (see spool.py)."""
        self._head_goes()
        if final:
            self._final = (data, size)  # see _hand_over_final
            return
        self._handover().hand_over(data)

    def _handover(self) -> BodyHandover:
        """The body's way to the loop through a spool (spool.py), made for the first piece
        handed over before the last: a whole response goes in one loop call without it.
        Made by this thread while the loop may pause, resume or abort the exchange: once it
        is published, it takes up what the loop did before it could see it."""
        body = self._body
        if body is None:
            body = self._body = BodyHandover(self.connection, self.pool, self.protocol, self._send_on_loop)
            body.catch_up(self._aborted)
        return body

    def _end_with(self, *call) -> None:
        """``call`` on the loop instead of the body's end, after all that was handed over."""
        body = self._body
        if body is None:
            self.pool.call_in_loop(*call)
        else:
            body.end_with(*call)

    def _hand_over_final(self) -> None:
        """End the response, after the iterable and ``wsgi.input`` are closed: the client's
        next request may run as soon as it has this answer, and must find them closed."""
        self.config.answers.append(None)  # answered (before the hand-over: the loop it wakes may dispatch)
        final, self._final = self._final, None
        if final is None:
            return
        try:
            if self._aborted:
                raise ClientDisconnected()
            if type(final) is not tuple:
                self._end_with(*final.calls)
                return
            if self._lease is not None and type(self._response) is tuple and self._write_whole(final[0]):
                return
            if self._body is not None:
                self._body.hand_over(final[0], True, final[1])
            elif answer_exchange is not None:  # (nothing handed over before: _head_on_loop, compiled)
                self.pool.call_in_loop(answer_exchange, self, final[0], final[1])
            else:
                self.pool.call_in_loop(self._head_on_loop, final[0], True, final[1])
        except ClientDisconnected:
            self.config.log.debug("Client disconnected before the end of the response to %s %s",
                                  self.head.method, self.head.target)

    def _write_whole(self, body: bytes) -> bool:
        """Write the head with the whole, unframed ``body`` through the lease; the loop ends
        the response. False: not now (or framed), the loop writes it all."""
        head, data = self._response
        if len(body) != head.whole_length and not head.sized:
            return False
        data += body
        written = self._lease.write(self.protocol, data)
        if written < 0:
            return False
        self._response = head
        lease, self._lease = self._lease, None  # (the loop keeps it for the connection's next response)
        self._end_with(self._whole_written_on_loop, head, data[written:], len(body), lease)
        return True

    def _fail(self, exc: BaseException) -> None:
        log = self.config.log
        if self._aborted:
            # The client went away; whatever the app did about it is nobody's error.
            level = log.debug if isinstance(exc, (InputClosed, ConnectionError)) else log.exception
            level("Request %s %s ended after the client disconnected", self.head.method, self.head.target)
            return
        if isinstance(exc, _TooLong):
            self._send(b"", final=True)
            return
        log.exception("Error handling request %s %s", self.head.method, self.head.target)
        if self._head_handed:
            self._final = _LoopCall(self.protocol.abort_response)
            return
        self._status = "500 Internal Server Error"
        self._headers = []
        self._final = _LoopCall(self._error_page, exc)

    def _error_page(self, exc: BaseException) -> None:
        """Loop side: the 500 of an app that failed before its head went out."""
        self.protocol.log_environ = self._environ
        self.protocol.handle_error(500, "", exc, None, False)


# ``exchange._head_on_loop(body, True, size)``, compiled (_answer.c): the loop's side of a whole
# answer handed over at once, by answer_whole (server.py). _head_on_loop is its reference, and
# what runs for a subclass or another kind of channel (an HTTP/2 stream's).
answer_exchange = compiled("answer_exchange")
if answer_exchange is not None:
    compiled("set_exchange_type")(WSGIExchange)


class _NoConnection:
    channel = None


_NO_CONNECTION = _NoConnection()  # a template's (WSGIExchange.template)


class _LoopCall:
    """A last call for the loop other than the end of the body (an error page, a cut)."""

    __slots__ = ("calls",)

    def __init__(self, *calls):
        self.calls = calls


class _TooLong(Exception):
    """The app sent more than its Content-Length; the rest was dropped."""


def _head_of(response):
    return response[0] if type(response) is tuple else response


def _close(result, wsgi_input, log) -> None:
    """Close the app's iterable and ``wsgi.input``, whatever happened to the response."""
    if result is not None and hasattr(result, "close"):
        try:
            result.close()
        except Exception as exc:  # the response is complete or abandoned by now
            log.exception("Error closing the response iterable: %s", exc)
    if hasattr(wsgi_input, "close"):
        wsgi_input.close()


# ``exchange.run(wsgi_input, content_length)``, compiled (_exchange.c): what the app thread does
# for a request, the common case of _send_result, _hand_over_final and _close inline. run is its
# reference, and what runs for a subclass or with gunicorn's request hooks.
run_exchange = compiled("run_exchange")
if run_exchange is not None:
    compiled("set_exchange_parts")(WSGIExchange, build_environ, EMPTY_INPUT, STATUS_LINE, ClientDisconnected, _close,
                                   answer_exchange)


def _checked(piece) -> bytes:
    if not isinstance(piece, bytes):
        raise TypeError(f"response body pieces must be bytes, not {type(piece).__name__}")
    return piece
