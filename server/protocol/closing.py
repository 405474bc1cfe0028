"""How an HTTP/1.1 connection ends: graceful closing, closing after a half-close
linger, and the timeouts of its one timer.

    closing()  ── graceful stop: after the current response, or soon if idle
    close()    ── now, or half-closed while the client may still be sending (linger)
    timeout    ── head/body: 408; keep-alive: close; linger: close

Mixed into ``ServerHttpProtocol``.
"""

from .errors import RequestTimeout
from .peer import peer_ip
from .timers import NO_TIMER

FIRST_REQUEST_GRACE = 1.0  # seconds a fresh connection gets to send its request while closing
NEXT_REQUEST_GRACE = 0.1  # seconds an idle keep-alive connection gets for the same
LINGER_TIMEOUT = 5.0  # seconds unread request bytes are drained after an early response
LINGER_LIMIT = 64 * 1024 * 1024  # bytes drained at most before the connection is closed anyway
NOT_PAUSED: frozenset = frozenset()  # why a connection pauses reading, while it reads (a pause makes a set)


class ConnectionEnding:
    """The ways a connection ends."""

    __slots__ = ()  # its state is in the connection's slots (``server.py``)

    def closing(self) -> None:
        """Graceful shutdown: close after the current response, or soon if idle.

        An idle connection's next request may already be on the way, so it gets a
        moment to arrive and is answered (with ``Connection: close``) rather than
        reset: a second for a connection accepted just now that has not received
        a byte yet, a tenth of one for a keep-alive connection between requests
        (its client sends the next request as soon as it has read a response).
        """
        self._closing = True
        self.keep_alive_allowed = False
        if self._upgraded is not None:
            closing = getattr(self._upgraded, "closing", None)
            if closing is not None:
                closing()
            else:
                self.close()
            return
        if self._head is not None:
            return
        if not self._parser.in_message:
            grace = NEXT_REQUEST_GRACE if self._received_any else FIRST_REQUEST_GRACE
            self._start_timer("keepalive", min(grace, self.config.head_timeout))

    def release(self) -> None:
        """Make room for another client (the worker is at ``worker_connections``): an idle
        keep-alive connection closes now, a busy one after its current response."""
        self.keep_alive_allowed = False
        if self.idle_until is not None and self._head is None and self._upgraded is None:
            self.close()

    def close(self) -> None:
        """Close after the write buffer is flushed (``connection_lost`` follows).

        If the client may still be sending the request we answered early (413,
        400, a response before the body was read), closing at once could make its
        TCP stack answer our reset by discarding the response it has not read
        yet: the connection is half-closed instead and its input drained a while.
        """
        if self._timer is not NO_TIMER:  # (a connection whose request came at accept never made one)
            self._timer.cancel()
        if self._kept_lease is not None:  # (first: a descriptor of the socket left open holds back its FIN)
            self.drop_kept_lease()
        if self._corked is not None:
            self._uncork(last=True)  # (what this connection holds goes with its FIN: cork.py)
        transport = self.transport
        if transport is None or self._linger_left:
            return
        # (may the client still be sending? asked here, not by a call: every connection closes)
        if (not self._peer_eof and self._upgraded is None and (self._input_failed or self._parser.in_message)
                and transport.can_write_eof()):
            self._linger(transport)
        else:
            transport.close()

    def _linger(self, transport) -> None:
        self._linger_left = LINGER_LIMIT
        self.write_closed = True
        transport.write_eof()
        if self._head is not None and self._upgraded is None:
            self.app.on_disconnect()  # (an app still answering: its answer cannot go out)
        if self._read_paused_by:
            self._read_paused_by = NOT_PAUSED
            transport.resume_reading()
        self._start_timer("linger", LINGER_TIMEOUT)

    def first_wait_over(self) -> None:
        """Its wait for its first bytes is over (timers.FirstWaits): closed, as at the end of a
        keep-alive wait, unless it has received bytes since or was handed over."""
        if not self._received_any and self._upgraded is None and self.transport is not None:
            self.close()

    def _discard(self, data: bytes) -> None:
        self._linger_left = max(0, self._linger_left - len(data))
        if not self._linger_left and self.transport is not None:
            self.transport.close()

    def _on_timeout(self, phase: str) -> None:
        if phase == "linger":
            self.transport.close()
            return
        if phase == "keepalive":
            self.close()
            return
        if self.log is not None:
            self.log.debug("Closing %s: %s timeout", peer_ip(self.peername), phase)
        timeout = RequestTimeout(f"Timed out receiving the request {phase}")
        if phase == "body":
            self._body_failed(timeout)
        elif phase == "head":
            self.handle_error(408, timeout.message, close=True)
        else:
            self.close()

    def _body_failed(self, exc: RequestTimeout) -> None:
        """The request body will not come (too late, too slow): the app owning the response
        learns it and the connection closes; otherwise the client gets a 408."""
        if self._sink.set_exception(exc):
            self.close()
        else:
            self.handle_error(408, exc.message, close=True)
