"""A bounded pool of application threads and a batched way back to the loop.

    loop ──submit(job)──► SimpleQueue ──► N threads run WSGI apps
    loop ◄──one eventfd write per batch── deque of (fn, args) ◄── threads

``run_in_executor`` pays for a concurrent Future, its asyncio wrapper and a
self-pipe write per call. Here a thread appends its result to a deque and wakes
the loop only if no wake-up is already pending, so a busy loop drains many
results per wake-up. Calls made from one thread run on the loop in the order
they were made.

The wake-up is the pool's own eventfd, watched by the loop: ``os.write``
releases the GIL, so the loop thread it wakes can run at once (with
``call_soon_threadsafe`` the writer holds the GIL while the loop wakes), and
the calls run when the loop polls, not on the iteration after. The descriptor
is never closed: a pool thread finishing late must not write to a reused one.

Pool threads are SCHED_BATCH on Linux: woken by ``submit``, a thread does not
preempt the loop thread (it could only wait for the GIL the loop holds); it runs
when the loop blocks. On one core this saves two context switches per request.

A backlog holds off new clients: ``backlogged()`` is True while ``BACKLOG`` jobs
wait for a thread, and ``call_when_room(callback)`` has the first thread to take a
job that leaves ``ROOM`` or fewer waiting call it on the loop (the listeners stop
accepting meanwhile: workers/listeners.py). Both are counts of jobs, not of
threads: the backlog that builds while the loop holds the core is the same whatever
the pool's size (with ``--threads 1``, gunicorn's default, one waiting job as the
limit made the loop wake per request: half the throughput).

Saturation is visible: while jobs wait for a thread, a warning at most every
``SATURATION_WARNING_INTERVAL`` seconds gives how many wait and the longest wait
(as waitress's "Task queue depth" does): ``--threads`` too low for the load.
``busy()`` and ``waiting()`` give the same to the worker's load gauges; ``pool_on(loop)``
finds the pool serving a loop.
"""

import collections
import os
import queue
import threading
import time
import weakref

_STOP = object()
SATURATION_CHECK = 1.0  # seconds between looks at the queue of waiting jobs
SATURATION_WARNING_INTERVAL = 5.0  # seconds at least between two warnings
BACKLOG = 8  # jobs waiting for a thread from which new clients are held off (listeners.py)
ROOM = 4  # ... until a thread takes one and leaves at most these waiting
_WAKE = (1).to_bytes(8, "little")
_WAKE_TOKEN = 0
_POOLS: "weakref.WeakSet[ThreadPool]" = weakref.WeakSet()  # the pools of this process


def pool_on(loop) -> "ThreadPool | None":
    """The pool whose results go back to ``loop`` (the worker's, for its gauges), if any."""
    return next((pool for pool in list(_POOLS) if pool._loop is loop and not pool.stopped), None)


def _wake_fds() -> tuple[int, int]:
    """A non-blocking (read, write) pair of descriptors to wake the loop: one eventfd on Linux."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


class ThreadPool:
    def __init__(self, loop, size: int, log=None, name: str = "wsgi"):
        self._loop = loop
        self._log = log
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        # When each job still waiting was submitted, oldest first (both ends are single
        # deque operations, atomic under the GIL: submit appends, a thread pops a job's).
        self._queued_at: collections.deque = collections.deque()
        self._warned_at = float("-inf")
        self._calls: collections.deque = collections.deque()
        # The right to wake the loop: one token, taken by the thread whose call finds no
        # wake-up pending (a dict's pop, atomic: no lock), put back by the loop before it
        # runs the calls. A call appended while it is taken is run by the pass it wakes.
        self._wake_token = {_WAKE_TOKEN: True}
        # The loop's callback for when fewer jobs than threads wait (call_when_room): one key,
        # taken by a dict's pop (atomic) by the one thread that calls it.
        self._on_room: dict = {}
        self._wake_r, self._wake_w = _wake_fds()
        loop.add_reader(self._wake_r, self._woken)
        self.size = max(1, size)
        self.stopped = False
        # One flag per thread, written only by its thread: True while it runs a job.
        self._running = [False] * self.size
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"{name}-{i}", daemon=True)
            for i in range(self.size)
        ]
        for thread in self._threads:
            thread.start()
        self._watch = loop.call_later(SATURATION_CHECK, self._check_saturation)
        _POOLS.add(self)

    def submit(self, fn, *args) -> None:
        """Run ``fn(*args)`` on a pool thread (callable from any thread)."""
        self._queued_at.append(time.monotonic())
        self._jobs.put((fn, args))

    def waiting(self) -> tuple[int, float]:
        """How many jobs wait for a thread, and the longest wait so far (seconds)."""
        queued = self._queued_at
        try:
            oldest = queued[0]
        except IndexError:
            return 0, 0.0
        return len(queued), time.monotonic() - oldest

    def busy(self) -> int:
        """How many threads are running a job now."""
        return sum(self._running)

    def backlogged(self) -> bool:
        """``BACKLOG`` jobs or more wait for a thread."""
        return len(self._queued_at) >= BACKLOG

    def call_when_room(self, callback) -> bool:
        """Loop side, while ``backlogged()``: ``callback()`` on the loop once a thread takes a
        job that leaves ``ROOM`` or fewer waiting. False if that is so already (threads took
        them meanwhile): then nothing is called."""
        self._on_room[_WAKE_TOKEN] = callback
        if len(self._queued_at) <= ROOM and self._on_room.pop(_WAKE_TOKEN, None) is not None:
            return False
        return True  # (if the pop found nothing, a thread has taken the callback to call it)

    def call_in_loop(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the loop thread soon (callable from any thread)."""
        self._calls.append((fn, args))
        if self._wake_token.pop(_WAKE_TOKEN, None) is None:
            return  # (a wake-up is pending: the calls it runs include this one)
        try:
            os.write(self._wake_w, _WAKE)  # releases the GIL: the woken loop thread can take it
        except OSError:  # closed at shutdown, or full (a wake-up is pending anyway)
            pass

    def shutdown(self) -> None:
        """Let the threads finish their current job and stop (does not wait)."""
        self._watch.cancel()
        self.stopped = True
        for _ in self._threads:
            self.submit(_STOP)

    def _woken(self) -> None:
        try:
            os.read(self._wake_r, 8)
        except (BlockingIOError, InterruptedError):
            pass
        self._run_calls()

    def _run_calls(self) -> None:
        self._wake_token[_WAKE_TOKEN] = True  # (before the calls are taken: see __init__)
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            try:  # (inline, as in _work: a call less per callback)
                fn(*args)
            except Exception:
                self._log_error("a loop callback from the thread pool")

    def _work(self, index: int) -> None:
        _no_wakeup_preemption()
        jobs = self._jobs
        running = self._running
        queued = self._queued_at
        on_room = self._on_room
        while True:
            fn, args = jobs.get()
            if fn is _STOP:
                self._queued_at.popleft()  # (a stop was queued with its time too)
                return
            running[index] = True  # (before the pop: a job is never missing from both counts)
            queued.popleft()
            if on_room and len(queued) <= ROOM:
                callback = on_room.pop(_WAKE_TOKEN, None)
                if callback is not None:
                    self.call_in_loop(callback)
            try:
                fn(*args)
            except BaseException:  # (an app's sys.exit() too: a job never ends its thread)
                self._log_error("a thread pool job")
            finally:
                running[index] = False

    def _log_error(self, what: str) -> None:
        """What a job or a loop callback raised is logged, not raised: a job never ends its
        thread, a callback never the loop (a KeyboardInterrupt on the loop still does)."""
        if self._log is not None:
            self._log.exception("Error in %s", what)

    def _check_saturation(self) -> None:
        """Loop side, every SATURATION_CHECK seconds: warn while jobs wait for a thread and
        every thread is busy. (A job submitted just now waits too, until a free thread is
        scheduled: even one connection would be warned about.)"""
        self._watch = self._loop.call_later(SATURATION_CHECK, self._check_saturation)
        depth, longest = self.waiting()
        now = time.monotonic()
        if (depth and self.busy() >= self.size and self._log is not None
                and now - self._warned_at >= SATURATION_WARNING_INTERVAL):
            self._warned_at = now
            self._log.warning("All %d app threads are busy: %d requests wait for one, the longest for "
                              "%.1f s (raise --threads?)", self.size, depth, longest)


def _no_wakeup_preemption() -> None:
    """Make the calling thread SCHED_BATCH where the platform has it (Linux)."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # 0: the calling thread
    except (AttributeError, OSError):
        pass
