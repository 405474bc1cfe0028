"""A WSGI response body on its way from the app thread to the loop, through a spool.

    app thread ──hand_over(piece)──► ResponseSpool (memory, then a temporary file)
    loop       ◄──drain()──────────  as the transport takes writes (after each hand-over,
                                      on resume_writing), oldest bytes first; the end once
                                      the app is done and every byte is written

The app thread never waits for a slow client while its response fits the spool:
up to ``response_spool_max`` bytes per response, and ``spool_budget`` over all the
responses of the worker (``ServerConfig``). Past either it waits on backpressure as
it would without a spool: while the transport is paused or more than
``INFLIGHT_LIMIT`` bytes it handed over are not written yet. A spool cap of 0 turns
spooling off.

The fast path stays as cheap as a plain hand-over: pieces go to memory (a deque,
no copy) and the loop takes all that waits with one call per batch; a temporary
file is only made when more than ``response_spool_memory`` bytes wait.
"""

from server.protocol.errors import ClientDisconnected
from server.protocol.spool import ResponseSpool

INFLIGHT_LIMIT = 256 * 1024  # bytes handed over and not yet written that need no spool
DRAIN_STEP = 256 * 1024  # bytes the loop takes from a spool per write
DRAIN_PER_TURN = 1024 * 1024  # bytes written per loop callback before the others get a turn


class BodyHandover:
    """One response's body between its app thread and the loop (``connection``: the WSGI
    connection, whose exchange condition guards everything here shared by both)."""

    __slots__ = ("_connection", "_cond", "_pool", "_channel", "_write", "_cap", "_budget", "_paused", "aborted",
                 "_waiting", "_inflight", "_spool", "_delivery_due", "_final", "_last_call", "_ended")

    def __init__(self, connection, pool, channel, write):
        config = channel.config
        self._connection = connection
        self._cond = connection.made_condition  # its exchange condition (None: not made yet, see _condition)
        self._pool = pool
        self._channel = channel
        self._write = write  # loop: write(data, end, size) frames and writes (the head with the first piece);
        # from the spool, data is a list of ``size`` bytes of pieces, written without a join
        self._cap = config.response_spool_max
        self._budget = config.spool_budget
        self._paused = channel.writing_paused
        self.aborted = False
        self._waiting = False
        self._inflight = 0  # bytes handed over and not yet written (all in the spool)
        self._spool: ResponseSpool | None = None  # made at the first hand-over that needs one
        self._delivery_due = False  # a deliver() is on its way to the loop
        self._final = False  # the last piece is in the spool
        self._last_call: tuple | None = None  # (fn, *args) to run instead of the body's end
        self._ended = False  # loop: the end of the body is written

    def _condition(self):
        """The connection's exchange condition, made at the first use by either thread (most
        responses never need it: see WSGIConnection.exchange_condition)."""
        cond = self._cond
        if cond is None:
            cond = self._cond = self._connection.exchange_condition  # (both threads set the same one)
        return cond

    def catch_up(self, aborted: bool) -> None:
        """App thread, once this handover is the exchange's: take up a pause, a resume or an
        abort the loop made while it was being made. (The loop sets ``writing_paused``, or
        the exchange's abort, before it looks for the handover: either it finds this one,
        or this thread finds what it set.)"""
        with self._cond or self._condition():
            self._paused = self._channel.writing_paused
        if aborted:
            self.abort()

    # -- app thread ----------------------------------------------------------------------

    def hand_over(self, data: bytes, final: bool = False, size: int = 0) -> None:
        """Hand bytes to the loop (``final``: the last ones); waits only past the spool's bounds."""
        if final and self._nothing_waits():
            self._pool.call_in_loop(self._last_write(), data, True, size)
            return
        n = len(data)
        cond = self._cond or self._condition()
        cond.acquire()  # (its lock's own method: ``with cond`` costs two Python calls a piece)
        try:
            if not self._paused and self._inflight <= INFLIGHT_LIMIT and not self.aborted:
                self._budget.take(n)  # (the common case of _room, inline)
            else:
                while not self.aborted and not self._room(n):
                    self._waiting = True
                    cond.wait()
                self._waiting = False
                if self.aborted:
                    raise ClientDisconnected()
            spool = self._spool
            if spool is None:
                config = self._channel.config
                spool = self._spool = ResponseSpool(config.response_spool_memory, config.spool_dir)
            try:
                spool.append(data)
            except BaseException:  # (the disk is full: the app's error, the response cut)
                self._budget.give_back(n)
                raise
            self._inflight += n
            self._final = final
            if self._delivery_due or self._paused:
                return  # the loop takes it with the pieces before it, or when the transport resumes
            self._delivery_due = True
        finally:
            cond.release()
        self._pool.call_in_loop(self.deliver)

    def end_with(self, *call) -> None:
        """Instead of the body's end: ``call`` (a cut, a file's end) on the loop, once all that
        was handed over is written."""
        if self._nothing_waits():
            self._last_write()
            self._pool.call_in_loop(*call)
            return
        with self._cond or self._condition():
            if self.aborted:
                raise ClientDisconnected()
            self._last_call = call
            self._final = True
            if self._delivery_due or self._paused:
                return
            self._delivery_due = True
        self._pool.call_in_loop(self.deliver)

    def _last_write(self):
        """The writer, dropped for the end of the body: it is the exchange's, which holds this
        handover, and once nothing more is written the exchange is freed as soon as it is
        dropped (no cycle left for the garbage collector, which otherwise ran its scans for
        every few hundred requests)."""
        write, self._write = self._write, None
        return write

    def _nothing_waits(self) -> bool:
        """Has the loop written all that was handed over? (Only this thread raises either
        count; then the spool is closed: the response ends with the next loop call.)"""
        if self._delivery_due or self._inflight:
            return False
        if self._spool is not None:
            with self._cond or self._condition():
                self._spool.close()
        return True

    def _room(self, n: int) -> bool:
        """May ``n`` more bytes be handed over now (under the condition)?"""
        if not self._paused and self._inflight <= INFLIGHT_LIMIT:  # as without a spool
            self._budget.take(n)
            return True
        return self._inflight + n <= self._cap and self._budget.try_take(n)

    # -- loop ------------------------------------------------------------------------------

    def deliver(self) -> None:
        with self._cond or self._condition():
            self._delivery_due = False
        self.drain()

    def drain(self) -> None:
        """Write what the spool holds while the transport takes it; end the body when the app
        is done and all is written."""
        channel = self._channel
        cond = self._cond or self._condition()
        written = 0
        while not self._ended:
            transport = channel.transport
            if transport is None or transport.is_closing():
                return
            with cond:
                spool = self._spool
                if self.aborted or spool is None:
                    return
                pieces, n = spool.take(DRAIN_STEP) if spool.size and not channel.writing_paused else ([], 0)
                end = self._final and not spool.size
                if not n and not end:
                    return
                self._inflight -= n
                self._budget.give_back(n)
                if self._waiting:
                    cond.notify_all()
            if end:
                self._ended = True
                spool.close()
                write = self._last_write()
                if self._last_call is not None:
                    if n:
                        write(pieces, False, n)
                    (fn, *args), self._last_call = self._last_call, None
                    fn(*args)
                else:
                    write(pieces, True, n)
                return
            self._write(pieces, False, n)
            written += n
            if written >= DRAIN_PER_TURN:
                channel.loop.call_soon(self.drain)
                return

    def pause(self) -> None:
        with self._cond or self._condition():
            self._paused = True

    def resume(self) -> None:
        cond = self._cond or self._condition()
        with cond:
            self._paused = False
            if self._waiting:
                cond.notify_all()
            waiting = self._spool is not None and (self._spool.size or self._final)
        if waiting and not self._ended:
            # After resume_writing has done its own work (it may go on to a next request).
            self._channel.loop.call_soon(self.drain)

    def abort(self) -> None:
        """The client is gone: wake the app thread, drop the spool and give its bytes back."""
        cond = self._cond or self._condition()
        with cond:
            self.aborted = True
            cond.notify_all()
            if self._spool is not None:
                self._spool.close()
            self._budget.give_back(self._inflight)
            self._inflight = 0
