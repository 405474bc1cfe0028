"""One WSGI request/response, run on a pool thread, written by the loop.

    loop: dispatch() ──► pool thread: app(environ, start_response) → body pieces
    pool thread: _send(bytes) ──call_in_loop──► loop: protocol.write(bytes)

The socket is only touched by the loop. The app thread frames the response with
a sans-IO ``ResponseWriter`` and hands bytes over through the pool's batched
channel. Backpressure: the thread blocks while the transport is paused
(``pause_writing``) or while more than ``INFLIGHT_LIMIT`` bytes it handed over
have not reached the transport yet. A whole response known at once (a list or
tuple body) goes over in one hand-off with a Content-Length.

Pieces of a streamed body are coalesced, never held back: a piece waits for no
other, but pieces produced while the loop has not yet taken the previous ones
join them, and the loop writes them all with one call (a fast generator costs
one loop hop per batch instead of one per piece).

The iterable's ``close()`` is always called, also when the client went away
(writes then raise ``ClientDisconnected`` inside the server, never in the log as
an error). An exception before the head is sent gives a 500 and the connection
stays usable; after it, the connection is closed (the client sees a cut body).
"""

import concurrent.futures
import time
import traceback

from server.protocol.accesslog import LoggedRequest, LoggedResponse, log_access
from server.protocol.writer import ResponseWriter, parse_status

from .body import InputClosed, empty_input
from .environ import build_environ
from .filewrapper import FileWrapper

INFLIGHT_LIMIT = 256 * 1024


class ClientDisconnected(ConnectionResetError):
    pass


class WSGIExchange:
    def __init__(self, protocol, head, config):
        self.protocol = protocol
        self.head = head
        self.config = config  # WSGIConfig
        self.pool = config.pool
        self._cond = protocol.exchange_condition  # one per connection: exchanges do not overlap
        self._paused = protocol._writing_paused
        self._aborted = False
        self._inflight = 0
        self._waiting = False
        self._pending: list[bytes] = []  # handed over, not yet taken by the loop
        self._pending_final = False
        self._delivery_due = False  # a _deliver call is on its way to the loop
        self._final: bytes | None = None  # the last bytes, handed over once the app is cleaned up
        self._status: str | None = None
        self._headers: list | None = None
        self._writer: ResponseWriter | None = None

    # -- loop side ----------------------------------------------------------

    def dispatch(self, wsgi_input, content_length: int | None) -> None:
        self.pool.submit(self.run, wsgi_input, content_length)

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            if self._waiting:
                self._cond.notify_all()

    def _deliver(self) -> None:
        """Write everything handed over since the last delivery."""
        with self._cond:
            pieces, self._pending = self._pending, []
            final = self._pending_final
            self._delivery_due = False
            data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            self._inflight -= len(data)
            if self._waiting:
                self._cond.notify_all()
        self.protocol.write(data)
        if final:
            self.protocol.response_finished(self._writer.keep_alive)

    def _deliver_whole(self, data: bytes) -> None:
        """The one hand-off of a response nothing else was handed over for."""
        self.protocol.write(data)
        self.protocol.response_finished(self._writer.keep_alive)

    def _abandon(self) -> None:
        """The app failed after the head went out: the response cannot be completed."""
        self.protocol.close()
        self.protocol.response_finished(False)

    # -- app thread side ----------------------------------------------------

    def run(self, wsgi_input, content_length: int | None) -> None:
        started = time.monotonic()
        config = self.config
        protocol = self.protocol
        forwarded = protocol.forwarded(self.head)
        environ = build_environ(
            config.environ, self.head, wsgi_input=wsgi_input if wsgi_input is not None else empty_input(),
            content_length=content_length, peername=forwarded.client, sockname=protocol.sockname,
            url_scheme=forwarded.scheme, host=forwarded.host, forwarder_fields=forwarded.fields,
            client=protocol.client_environ(self.head, forwarded),
        )
        result = None
        hooks = config.hooks
        if hooks is not None:
            request = LoggedRequest([(k.upper(), v) for k, v in self.head.headers.items()], self.head)
            self._run_hook(hooks.pre_request, request)
        try:
            result = config.app(environ, self.start_response)
            self._send_result(result)
        except ClientDisconnected:
            config.log.debug("Client disconnected during the response to %s %s", self.head.method, self.head.target)
        except Exception as exc:
            self._fail(exc)
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception as exc:  # the response is complete or abandoned by now
                    config.log.exception("Error closing the response iterable: %s", exc)
            if hasattr(wsgi_input, "close"):
                wsgi_input.close()
        self._hand_over_final()
        if config.access_log and self._writer is not None:
            self._log_access(environ, time.monotonic() - started)
        if hooks is not None:
            writer = self._writer
            response = LoggedResponse(self._status, writer.sent if writer else 0, self._headers or [])
            self._run_hook(hooks.post_request, request, environ, response)

    def _run_hook(self, hook, *args) -> None:
        if hook is None:
            return
        try:
            hook(self.config.worker, *args)
        except Exception:
            self.config.log.exception("Exception in %s hook", hook.__name__)

    def start_response(self, status: str, headers: list, exc_info=None):
        if exc_info is not None:
            try:
                if self._writer is not None and self._writer.head_sent:
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

    def _new_writer(self) -> ResponseWriter:
        head = self.head
        keep_alive = head.keep_alive and self.protocol.keep_alive_allowed
        return ResponseWriter(head.method, head.version, keep_alive, self.config.server_header)

    def _head_bytes(self, body_size: int | None = None) -> bytes:
        if self._status is None:
            raise AssertionError("the application did not call start_response()")
        code, reason = parse_status(self._status)
        self._writer = writer = self._new_writer()
        return writer.head(code, reason, self._headers, body_size)

    def _send_result(self, result) -> None:
        if isinstance(result, (list, tuple)):
            body = b"".join(_checked(piece) for piece in result)
            if self._writer is None:
                self._send_whole(body)
                return
            self._send_piece(body)
        elif isinstance(result, FileWrapper) and self._send_file(result):
            return
        else:
            for piece in result:
                self._send_piece(_checked(piece))
        self._finish()

    def _send_whole(self, body: bytes) -> None:
        """The whole response in one hand-off, with its length."""
        data = self._head_bytes(len(body)) + self._writer.body(body)
        if self._writer.truncated:
            self._warn_truncated()
        self._send(data + self._writer.finish(), final=True)

    def _warn_truncated(self) -> None:
        self.config.log.warning("Response to %s %s longer than its Content-Length: truncated",
                                self.head.method, self.head.target)

    def _send_piece(self, data: bytes) -> None:
        if not data:
            return
        if self._writer is None:
            head = self._head_bytes()
            self._send(head + self._writer.body(data))
        else:
            self._send(self._writer.body(data))
        if self._writer.truncated:
            raise _TooLong()

    def _finish(self) -> None:
        head = self._head_bytes(0) if self._writer is None else b""
        self._send(head + self._writer.finish(), final=True)

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a regular file with its length: by sendfile where the loop can, else by blocks."""
        span = wrapper.sendfile_span()
        if span is None:
            return False
        offset, count = span
        declared = any(name.lower() == "content-length" for name, _ in self._headers or ())
        head = self._head_bytes(None if declared else count)
        writer = self._writer
        if writer.length is not None:
            count = min(count, writer.length)
        if writer.no_body or not count:
            self._send(head + writer.finish(), final=True)
            return True
        if not self.config.sendfile:
            self._send(head)
            for piece in wrapper:
                self._send_piece(piece)
            self._finish()
            return True
        self._send(head)
        done = concurrent.futures.Future()
        self.pool.call_in_loop(self._start_sendfile, wrapper.filelike, offset, count, done)
        try:
            writer.sent += done.result()
        except (ConnectionError, RuntimeError) as exc:
            raise ClientDisconnected() from exc
        self._send(writer.finish(), final=True)
        return True

    def _start_sendfile(self, file, offset: int, count: int, done: concurrent.futures.Future) -> None:
        """Loop side: run sendfile after the head handed over before it."""
        task = self.protocol.loop.create_task(self.protocol.sendfile(file, offset, count))

        def report(task):
            if task.cancelled():
                done.set_exception(ConnectionResetError("sendfile cancelled"))
            elif task.exception() is not None:
                done.set_exception(task.exception())
            else:
                done.set_result(task.result())

        task.add_done_callback(report)

    def _send(self, data: bytes, final: bool = False) -> None:
        """Hand bytes to the loop; block while the client is not keeping up."""
        if self._aborted:
            raise ClientDisconnected()
        if final:
            self._final = data  # see _hand_over_final
            return
        self._hand_over(data, False)

    def _hand_over_final(self) -> None:
        """End the response, after the iterable and ``wsgi.input`` are closed: the client's
        next request may run as soon as it has this answer, and must find them closed."""
        data, self._final = self._final, None
        if data is None:
            return
        try:
            if self._aborted:
                raise ClientDisconnected()
            self._hand_over(data, True)
        except ClientDisconnected:
            self.config.log.debug("Client disconnected before the end of the response to %s %s",
                                  self.head.method, self.head.target)

    def _hand_over(self, data: bytes, final: bool) -> None:
        if final and not self._delivery_due and self._inflight == 0:  # only this thread sets _delivery_due
            self.pool.call_in_loop(self._deliver_whole, data)
            return
        with self._cond:
            while (self._paused or self._inflight > INFLIGHT_LIMIT) and not self._aborted:
                self._waiting = True
                self._cond.wait()
            self._waiting = False
            if self._aborted:
                raise ClientDisconnected()
            self._inflight += len(data)
            self._pending.append(data)
            self._pending_final = final
            if self._delivery_due:
                return  # the loop takes it with the pieces before it
            self._delivery_due = True
        self.pool.call_in_loop(self._deliver)

    def _fail(self, exc: BaseException) -> None:
        config = self.config
        if self._aborted:
            # The client went away; whatever the app did about it is nobody's error.
            level = config.log.debug if isinstance(exc, (InputClosed, ConnectionError)) else config.log.exception
            level("Request %s %s ended after the client disconnected", self.head.method, self.head.target)
            return
        if isinstance(exc, _TooLong):
            self._warn_truncated()
            self._send(self._writer.finish(), final=True)
            return
        config.log.exception("Error handling request %s %s", self.head.method, self.head.target)
        if self._writer is not None and self._writer.head_sent:
            self.pool.call_in_loop(self._abandon)
            return
        message = "".join(traceback.format_exception(exc)) if config.debug else "Internal Server Error"
        self._status = "500 Internal Server Error"
        self._headers = [("Content-Type", "text/plain; charset=utf-8")]
        self._send_whole((message + "\n").encode("utf-8"))

    def _log_access(self, environ: dict, seconds: float) -> None:
        try:
            log_access(self.config.log, environ, self.head.headers.items(), self._status, self._headers,
                       self._writer.sent, seconds)
        except Exception:
            self.config.log.exception("Access log failed")


class _TooLong(Exception):
    """The app sent more than its Content-Length; the rest was dropped."""


def _checked(piece) -> bytes:
    if not isinstance(piece, bytes):
        raise TypeError(f"response body pieces must be bytes, not {type(piece).__name__}")
    return piece

