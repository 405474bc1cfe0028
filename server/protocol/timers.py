"""The one timer of a connection.

A connection is always in at most one timed phase, so one object holds the
deadline and one ``TimerHandle``:

* ``head``: from the first byte of a request until its head is complete;
* ``body``: while a request body is arriving, reset by every byte (idle timeout);
* ``keepalive``: between requests, from the end of a response (and a fresh
  connection's wait for its first byte, once it has a timer: until then that wait is
  timed with every new connection's, by ``FirstWaits``).

Pushing a deadline later (``touch``) allocates nothing: when the handle fires
early it re-arms itself for the rest. ``cancel`` is called from the one
teardown path of the protocol, so no timer outlives its connection.

A connection makes its timer when it first enters a phase: until then it holds
``NO_TIMER``, in no phase. Behind a proxy that opens a connection per request, most
never enter one: the request is read at accept, answered, and the connection closed
(a timer and its bound callback are two objects of its set-up and teardown). Once the
connection is gone it holds ``GONE_TIMER``, whose phases never time out.
"""

from typing import Callable


class ConnectionTimer:
    __slots__ = ("_loop", "_on_timeout", "_handle", "_handle_when", "deadline", "_seconds", "phase")

    def __init__(self, loop, on_timeout: Callable[[str], None]):
        self._loop = loop
        self._on_timeout = on_timeout
        self._handle = None
        self._handle_when = 0.0
        self.deadline = 0.0
        self._seconds = 0.0
        self.phase: str | None = None

    def start(self, phase: str, seconds: float) -> None:
        """Enter ``phase``; time out ``seconds`` from now (0 or less: no timeout)."""
        if seconds <= 0:
            self.phase = None
            return
        self.phase = phase
        self._seconds = seconds
        self.deadline = deadline = self._loop.time() + seconds
        if self._handle is not None:
            if self._handle_when <= deadline:
                return  # fires early, then re-arms for the rest
            self._handle.cancel()
        self._arm(deadline)

    def touch(self) -> None:
        """Push the deadline of the current phase to ``seconds`` from now."""
        if self.phase is not None:
            self.deadline = self._loop.time() + self._seconds

    def stop(self) -> None:
        """Leave the timed phase; the handle, if any, fires harmlessly or is reused. (It is
        all of it: a caller on a hot path may set ``phase`` to None itself, a call less.)"""
        self.phase = None

    def cancel(self) -> None:
        self.phase = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """``cancel``, for good: the connection is gone. The callback, a bound method of the
        connection, is dropped (the two would refer to each other: freed only by the garbage
        collector); a timer started after this times out into nothing."""
        self.cancel()
        self._on_timeout = _no_timeout

    def _arm(self, when: float) -> None:
        self._handle_when = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self.phase is None:
            return
        if self._loop.time() < self.deadline:
            self._arm(self.deadline)
            return
        phase, self.phase = self.phase, None
        self._on_timeout(phase)


class NoTimer:
    """A timer in no phase, for good (``GONE_TIMER``) or until the connection makes its
    ``ConnectionTimer`` (``NO_TIMER``, which must not be started: a phase it took would
    never time out)."""

    __slots__ = ("_startable", "phase")
    deadline = 0.0
    _handle = None

    def __init__(self, startable: bool):
        self._startable = startable
        self.phase = None  # (writable, as a timer's: ``phase = None`` is ``stop()``; nothing sets another)

    def start(self, phase: str, seconds: float) -> None:
        if not self._startable:
            raise RuntimeError("NO_TIMER started: the connection makes its ConnectionTimer first")

    def touch(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


NO_TIMER = NoTimer(startable=False)
GONE_TIMER = NoTimer(startable=True)


def _no_timeout(phase: str) -> None:
    """The callback of a closed timer."""


class FirstWaits:
    """The waits of a worker's new connections for their first bytes, all ``seconds`` long,
    timed by one handle of the loop.

    Under load a client's connect is often accepted a few microseconds before its request
    comes (measured: four new connections in five, a connection per request at c=50), and
    such a wait is short. A timer of its own (a ``ConnectionTimer`` and a handle of the loop,
    armed and then cancelled) cost 14.5k instructions, an eighth of the whole request's. All
    waits being equally long, the oldest ends first: they are kept in the order they began,
    and the one handle is armed for the oldest.

    A connection is here from ``connection_made`` until it makes its own timer or is lost
    (``ServerHttpProtocol`` keeps that true, taking it out of ``waiting`` itself: a call less):
    at most the connections open. At the end of its wait it is told (``first_wait_over()``);
    having received nothing, it closes.
    """

    __slots__ = ("seconds", "waiting", "_loop", "_handle")

    def __init__(self, seconds: float):
        self.seconds = seconds  # 0 or less: no limit
        self.waiting: dict = {}  # connection -> its deadline, oldest first
        self._loop = None
        self._handle = None

    def __contains__(self, connection) -> bool:
        return connection in self.waiting

    def add(self, connection, loop) -> None:
        if loop is not self._loop and not self._start_over(loop):
            return
        deadline = loop.time() + self.seconds
        self.waiting[connection] = deadline
        if self._handle is None:
            self._handle = loop.call_at(deadline, self._expire)

    def _start_over(self, loop) -> bool:
        """Time the waits on ``loop``: the first, or a config used again on a new loop (the
        waits of the old one went with it). False: no limit, nothing is kept."""
        if self.seconds <= 0:
            return False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.waiting.clear()
        self._loop = loop
        return True

    def _expire(self) -> None:
        self._handle = None
        waiting = self.waiting
        now = self._loop.time()
        over = []
        for connection, deadline in waiting.items():
            if deadline > now:
                self._handle = self._loop.call_at(deadline, self._expire)
                break
            over.append(connection)
        for connection in over:
            if waiting.pop(connection, None) is not None:
                connection.first_wait_over()
