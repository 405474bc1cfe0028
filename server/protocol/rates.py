"""Minimum data rates, as ASP.NET Core Kestrel has them (``MinRequestBodyDataRate``,
``MinResponseDataRate``: 240 bytes/s after a 5 s grace).

    request body: from its head to its end          bytes received / seconds
    response:     while the transport is paused     bytes the client took / seconds
                  for writing (the client lags)
    from ``grace`` seconds on, the rate over the last ``grace`` seconds below
    ``minimum`` ──► on_too_slow()

An idle timeout alone never ends a client that trickles a byte a second, nor one
that stops reading a response: these do. Measured by a check every
``RATE_CHECK`` seconds while a phase lasts (a handle per phase, none between).
"""

import collections
import fcntl
import math
import struct
import termios

from .errors import RequestTimeout
from .peer import peer_ip

RATE_CHECK = 1.0  # seconds between looks at the rate
_OUTQ = getattr(termios, "TIOCOUTQ", None)  # SIOCOUTQ on a TCP socket: bytes not yet acknowledged


def kernel_send_queue(transport) -> int:
    """Bytes in the kernel's send queue of ``transport``'s socket (0 where it cannot be read)."""
    if _OUTQ is None:
        return 0
    sock = transport.get_extra_info("socket")
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
    except (AttributeError, OSError, ValueError):
        return 0


class MinimumRate:
    """Watches one phase's progress (``progress()``: bytes so far, never decreasing).

    The rate is taken over the last ``grace`` seconds (at least one check), from the
    ``grace``-th second of the phase on: a burst at its start (a socket buffer's worth
    taken at once) does not keep a client that then stops alive for long.
    """

    __slots__ = ("_loop", "_minimum", "_grace", "_progress", "_on_too_slow", "_since", "_samples", "_handle",
                 "_held", "_active", "_next_check")

    def __init__(self, loop, minimum: float, grace: float, progress, on_too_slow):
        self._loop = loop
        self._minimum = minimum  # bytes/s; 0 (or less): not watched
        self._grace = grace
        self._progress = progress
        self._on_too_slow = on_too_slow
        self._since = 0.0
        # (loop time, progress) at the start and at each check, over one window; made by the
        # first phase (a deque is 760 bytes: an HTTP/2 connection's stall watch may never start)
        self._samples: collections.deque | None = None
        # The check's handle outlives a phase: a phase that ends (most bodies end in the read
        # that brought their head) costs no timer; the next one reuses the handle, which fires
        # at or before that phase's first check and waits for the rest (as ConnectionTimer).
        self._handle = None
        self._next_check = 0.0
        self._active = False
        self._held = False  # stopped by hold(): release() starts it again

    def start(self) -> None:
        """Watch from now on (again, if a phase before was never stopped)."""
        if self._minimum <= 0:
            return
        self._held = False
        self._active = True
        self._since = now = self._loop.time()
        samples = self._samples
        if samples is None:
            samples = self._samples = collections.deque(maxlen=max(1, math.ceil(self._grace / RATE_CHECK)) + 1)
        else:
            samples.clear()
        samples.append((now, self._progress()))
        self._next_check = now + RATE_CHECK
        if self._handle is None:
            self._handle = self._loop.call_at(self._next_check, self._check)

    def stop(self) -> None:
        """End the phase (a pending check fires once, and does nothing)."""
        self._held = False
        self._active = False

    def cancel(self) -> None:
        """At teardown: no check outlives its connection or stream."""
        self.stop()
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()

    def hold(self) -> None:
        """The server stopped reading (its app does not take what comes): the peer is not
        slow meanwhile. Watching stops until ``release()``, which gives a new grace."""
        if self._active:
            self.stop()
            self._held = True

    def release(self) -> None:
        if self._held:
            self.start()

    def _check(self) -> None:
        self._handle = None
        if not self._active:
            return
        now = self._loop.time()
        if now < self._next_check:  # (a handle of a phase before: wait for this one's check)
            self._handle = self._loop.call_at(self._next_check, self._check)
            return
        samples = self._samples
        then, before = samples[0]
        progress = self._progress()
        samples.append((now, progress))
        if now - self._since >= self._grace and progress - before < self._minimum * (now - then):
            self._active = False
            self._on_too_slow()
            return
        self._next_check = now + RATE_CHECK
        self._handle = self._loop.call_at(self._next_check, self._check)


# What a connection's rates are until a phase is watched: stopping, holding or cancelling it
# does nothing. Most connections never upload nor lag; each of their rates would be a
# MinimumRate with its two bound methods (250 bytes) for as long as they stay open.
NOT_WATCHED = MinimumRate(None, 0.0, 0.0, None, None)


class ConnectionRates:
    """Mixed into ``ServerHttpProtocol``: both minimum rates of a connection."""

    __slots__ = ()  # its state is in the connection's slots (``server.py``)

    def _init_rates(self, config) -> None:
        self._body_received = 0  # bytes of the request body delivered so far
        self._buffered_at_pause = 0  # the transport's buffer when writing paused
        self._written_while_paused = 0
        self._body_rate = NOT_WATCHED  # (each made when its first phase starts)
        self._response_rate = NOT_WATCHED

    def _watch_body(self) -> None:
        """A request body starts arriving: how fast does it come?"""
        if self._body_rate is NOT_WATCHED:
            self._body_rate = self._rate(self.config.min_request_rate, self._body_progress, self._body_too_slow)
        self._body_rate.start()

    def _rate(self, minimum: float, progress, on_too_slow) -> MinimumRate:
        return MinimumRate(self.loop, minimum, self.config.rate_grace, progress, on_too_slow)

    def _body_progress(self) -> int:
        return self._body_received

    def _response_progress(self) -> int:
        """Bytes the client took since writing paused."""
        return self._buffered_at_pause + self._written_while_paused - self._unsent()

    def _unsent(self) -> int:
        """Bytes written and not yet taken by the client: the transport's buffer and the
        kernel's send queue. (A client reading a little at a time frees the kernel's queue
        long before the socket counts as writable again and the transport's buffer moves:
        Linux wakes a writer once a third of the send buffer is free, a minute at 32 KiB/s
        of a 4 MiB buffer.)"""
        transport = self.transport
        if transport is None:
            return 0
        return transport.get_write_buffer_size() + kernel_send_queue(transport)

    def _watch_response(self) -> None:
        """Writing paused: the client lags; how fast does it catch up?"""
        self._buffered_at_pause = self._unsent()
        self._written_while_paused = 0
        if self._response_rate is NOT_WATCHED:
            self._response_rate = self._rate(self.config.min_response_rate, self._response_progress,
                                             self._response_too_slow)
        self._response_rate.start()

    # A writer that bypasses the transport (os.sendfile on its socket) says when it lags:
    def response_lags(self) -> None:
        """The socket is full: watch how fast the client catches up."""
        self._watch_response()

    def written_while_lagging(self, n: int) -> None:
        self._written_while_paused += n

    def response_caught_up(self) -> None:
        if not self.writing_paused:
            self._response_rate.stop()

    def _stop_rates(self) -> None:
        if self._body_rate is not NOT_WATCHED:  # (most connections: neither was ever watched)
            self._body_rate.cancel()
        if self._response_rate is not NOT_WATCHED:
            self._response_rate.cancel()

    def _body_too_slow(self) -> None:
        if self._head is None or self.transport is None:
            return
        if self.log is not None:
            self.log.info("Closing %s: request body slower than %g bytes/s", peer_ip(self.peername),
                          self.config.min_request_rate)
        self._body_failed(RequestTimeout(f"Request body slower than {self.config.min_request_rate:g} bytes/s"))

    def _response_too_slow(self) -> None:
        """The client does not read what it asked for: drop what waits for it and close."""
        transport = self.transport
        if transport is None:
            return
        if self.log is not None:
            self.log.info("Closing %s: it reads the response slower than %g bytes/s", peer_ip(self.peername),
                          self.config.min_response_rate)
        transport.abort()  # (close() would wait for a buffer the client does not read)
