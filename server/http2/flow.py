"""Flow control of one HTTP/2 stream, both ways (mixed into ``H2Stream``).

    receiving: DATA ──► the app kind's body sink; acknowledged (WINDOW_UPDATE) at once, unless
               the sink paused reading (its buffer is full: a slow app), then when it resumes:
               the client can send no more than the stream's window ahead of the app
    sending:   body bytes ──► queue ──push()──► DATA as the stream's and the connection's send
               windows and the socket allow; while bytes wait, ``writing_paused`` is True, the app
               kind is paused (``on_pause_writing``) and ``drain()`` waits, as on HTTP/1.1 (a
               piece the windows take while nothing waits goes out at once, never queued)
"""

import asyncio

from server.protocol.errors import BadRequest, PayloadTooLarge, RequestTimeout
from server.protocol.rates import MinimumRate
from server.protocol.timers import ConnectionTimer
from server.protocol.wakeup import settle


class StreamFlow:
    __slots__ = ("open", "started", "input_ended", "sink", "writing_paused", "_early", "request_trailers",
                 "_body_rate", "_body_timer", "_received", "_held", "_read_paused_by", "_out", "_out_end",
                 "_out_trailers", "sent_end", "_drain_waiter")

    def _init_flow(self) -> None:
        self.open = True  # neither reset nor lost
        self.started = False  # the app kind has the request
        self.input_ended = False
        self.sink = None
        self.writing_paused = False
        # Made when first needed (most streams need none of the three):
        self._early: list | None = None  # (data, flow-controlled size) received before the app started
        self.request_trailers = None
        self._body_rate = None  # the minimum rate of the request body, while it arrives
        self._body_timer = None  # its idle timeout (ASYNCWORKER_BODY_TIMEOUT), while it arrives
        self._received = 0
        self._held = 0  # flow-controlled bytes not yet acknowledged (reading paused)
        self._read_paused_by: set[str] | None = None  # why reading is paused
        self._out: bytearray | None = None  # body bytes waiting for a window
        self._out_end = False
        self._out_trailers = None
        self.sent_end = False  # END_STREAM went out (set by the connection)
        self._drain_waiter: asyncio.Future | None = None

    # -- receiving ----------------------------------------------------------------------

    def deliver(self, sink) -> None:
        """The app kind took the request; its body sink gets what came before."""
        self.started = True
        self.sink = sink
        early, self._early = self._early, None
        for data, size in early or ():
            self._feed(data, size)
        if self.input_ended and sink is not None and self.open:
            sink.feed_eof(self.request_trailers)
        elif sink is not None and self.open:
            config = self.config
            self._body_rate = MinimumRate(self.loop, config.min_request_rate, config.rate_grace,
                                          self._body_progress, self._body_too_slow)
            self._body_rate.start()
            self._body_timer = ConnectionTimer(self.loop, self._body_idle)
            self._body_timer.start("body", config.body_timeout)

    def _body_progress(self) -> int:
        return self._received

    def _body_too_slow(self) -> None:
        if self.open and not self.input_ended:
            self.log.info("Resetting HTTP/2 stream %d: request body slower than %g bytes/s", self.id,
                          self.config.min_request_rate)
            self._body_refused(RequestTimeout(f"Request body slower than {self.config.min_request_rate:g} bytes/s"))

    def _body_idle(self, phase: str) -> None:
        if self.open and not self.input_ended:
            self.log.info("Resetting HTTP/2 stream %d: no request body for %g s", self.id, self.config.body_timeout)
            self._body_refused(RequestTimeout("Request body timeout"))

    def _stop_body_watch(self) -> None:
        """The body is all here or will not come: its watch ends, and goes (its callbacks are
        this stream's: kept, the two would wait for the garbage collector)."""
        rate, timer = self._body_rate, self._body_timer
        self._body_rate = self._body_timer = None
        if rate is not None:
            rate.cancel()
        if timer is not None:
            timer.cancel()

    def data_received(self, data: bytes, size: int) -> None:
        if self._body_timer is not None:
            self._body_timer.touch()
        self._received += len(data)
        limit = self.config.limits.body
        if limit and self._received > limit:
            self.conn.ack(self, size)
            self._body_refused(PayloadTooLarge(f"Request body larger than {limit} bytes"))
            return
        if not self.started:
            if self._early is None:
                self._early = []
            self._early.append((data, size))
            return
        self._feed(data, size)

    def _feed(self, data: bytes, size: int) -> None:
        sink = self.sink
        if sink is None or not self.open:
            self.conn.ack(self, size)
            return
        sink.feed_data(data)
        if self._read_paused_by:
            self._held += size
        else:
            self.conn.ack(self, size)

    def input_received(self, trailers=None) -> None:
        """END_STREAM from the client."""
        self.input_ended = True
        self.request_trailers = trailers
        self._stop_body_watch()
        if self.started and self.sink is not None:
            self.sink.feed_eof(trailers)

    def body_malformed(self, why: str) -> None:
        """The DATA disagree with the content-length (RFC 9113 s8.1.1): this stream alone ends,
        PROTOCOL_ERROR (a 400 if its app has not started)."""
        self.log.info("Resetting HTTP/2 stream %d: %s", self.id, why)
        self._body_refused(BadRequest(why), "PROTOCOL_ERROR")

    def _body_refused(self, exc, code: str = "CANCEL") -> None:
        sink = self.sink
        if sink is not None and self.started and sink.set_exception(exc):
            self.conn.reset(self, code)
            self.close_stream(ConnectionResetError(exc.message), notify=True)
            return
        self.handle_error(exc.status, exc.message)
        self.sink = None  # (refused: what still comes reaches no sink, and a WSGI app never runs)

    def pause_reading(self, reason: str) -> None:
        if not self._read_paused_by and self._body_rate is not None:
            self._body_rate.hold()  # (the client's window closes: it waits for us, not we for it)
            if self._body_timer is not None:
                self._body_timer.stop()
        if self._read_paused_by is None:
            self._read_paused_by = set()
        self._read_paused_by.add(reason)

    def resume_reading(self, reason: str) -> None:
        paused = self._read_paused_by
        if paused is not None and reason in paused:
            paused.discard(reason)
            if not paused:
                if self._body_rate is not None:
                    self._body_rate.release()
                if self._body_timer is not None and not self.input_ended and self.open:
                    self._body_timer.start("body", self.config.body_timeout)
                if self._held:
                    held, self._held = self._held, 0
                    self.conn.ack(self, held)

    def close_stream(self, exc: BaseException, notify: bool) -> None:
        """Nothing more goes out on this stream (reset, or the connection is gone): senders stop
        waiting; ``notify``: the app learns that its client left (not when it cut the response)."""
        if not self.open:
            return
        self.open = False
        self._out = None
        self._wake(exc)
        self._stop_body_watch()
        if self.writing_paused:
            self.writing_paused = False
            self.conn.blocked(self, False)
        if notify and self.started and not self._finished:
            if self.sink is not None and not self.input_ended:
                self.sink.set_exception(exc)
            self.app.on_disconnect()
        self.conn.stream_closed(self)

    # -- sending ------------------------------------------------------------------------

    def queue(self, data: bytes, end: bool = False, trailers=None) -> None:
        if trailers is None and not self._out and self.open and not self.writing_paused \
                and len(data) <= self.conn.room(self):
            self._send_now(data, end)  # (nothing waits and the windows take it all: most pieces)
            return
        if data:
            if self._out is None:
                self._out = bytearray(data)
            else:
                self._out += data
        if end:
            self._out_end = True
            self._out_trailers = trailers
        self.push()

    def push(self) -> None:
        """Send what the windows allow; pause the app while bytes wait."""
        if not self.open:
            return
        conn = self.conn
        out = self._out
        while out:
            room = conn.room(self)
            if room <= 0:
                conn.flush()
                self._set_paused(True)
                return
            last = room >= len(out)
            chunk = bytes(out) if last else bytes(out[:room])
            del out[:len(chunk)]
            conn.send_data(self, chunk, last and self._out_end and self._out_trailers is None)
        if self._out_end:
            self._out_end = False
            if self._out_trailers is not None:
                conn.send_headers(self, self._out_trailers, True)
            elif not self.sent_end:
                conn.send_data(self, b"", True)
            conn.output_ended(self)
        conn.flush()
        self._set_paused(False)

    def _send_now(self, data: bytes, end: bool) -> None:
        """Nothing waits and the windows take ``data``: as ``push`` would send it, without the
        queue's copy."""
        conn = self.conn
        if data or (end and not self.sent_end):
            conn.send_data(self, data if type(data) is bytes else bytes(data), end)
        if end:
            conn.output_ended(self)
        conn.flush()

    def _set_paused(self, paused: bool) -> None:
        if paused == self.writing_paused:
            return
        self.writing_paused = paused
        self.conn.blocked(self, paused)
        if paused:
            self.app.on_pause_writing()
        else:
            self._wake(None)
            self.app.on_resume_writing()

    async def drain(self) -> None:
        if not self.open:
            raise ConnectionResetError("Stream reset")
        if not self.writing_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self.loop.create_future()
        await asyncio.shield(self._drain_waiter)

    def _wake(self, exc) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        settle(waiter, exc)
