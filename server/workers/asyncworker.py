"""AsyncWorker: a gunicorn worker that serves apps from an asyncio event loop.

    gunicorn -k server.workers.AsyncWorker --threads 8 myproject.wsgi:application

One process, one loop (uvloop when installed), gunicorn's listening sockets,
and a protocol per connection. WSGI apps run in a pool of ``--threads``
threads. The worker honours gunicorn's contract: heartbeat (``notify``) from the
loop, ``max_requests`` (+ jitter), ``worker_connections``, ``graceful_timeout``,
the signals (TERM graceful, INT/QUIT quick, USR1 reopen logs, ABRT), the access
log through ``self.log.access`` and the ``limit_request_*`` and ``keepalive``
settings.

Graceful shutdown (SIGTERM, max_requests, parent gone): stop accepting at once,
close idle connections, let busy ones finish their current response (sent with
``Connection: close``) within ``graceful_timeout``, then close what is left.

Quick shutdown (SIGINT, SIGQUIT; gunicorn's master sends QUIT on INT and QUIT): stop
accepting and close every connection at once, except that WSGI requests already in the
app finish and send their response (``Connection: close``), as gthread's threads finish
theirs, within ``graceful_timeout`` (when gunicorn's master kills the worker). ASGI and
native requests are cut, as gunicorn's own ASGI worker cuts them: a coroutine can be
cancelled, a thread cannot.

Load gauges go to statsd (``--statsd-host``) and to an optional Prometheus endpoint
(``metrics.py``, ``prometheus.py``).
"""

import asyncio
import itertools
import os
import signal
import sys

from gunicorn.arbiter import Arbiter
from gunicorn.workers import base

from server.protocol.spool import spooled_bytes

from .apps import serving_for
from .config import ConfigError, WorkerConfig, check_config, startup_summary, worker_config
from .errorlog import route_loop_errors
from .heap import freeze_startup_objects, raise_young_threshold, retain_freed_heap
from .listeners import Listeners
from .metrics import worker_metrics
from .tls import ssl_context

HEARTBEAT_INTERVAL = 1.0
ROOM_BATCH = 32  # connections let go at once to make room at worker_connections
OVER_CAP_SHARE = 32  # busy connections let go may exceed worker_connections by 1/32 of it


def new_event_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def loop_name(loop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


class AsyncWorker(base.Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config: WorkerConfig | None = None  # read in init_process
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set = set()
        self._leaving: set = set()  # connections let go to make room (closing after their response)
        self.listeners: Listeners | None = None
        self._stopping: asyncio.Event | None = None
        self._quick_exit = False
        self._app_kind = None
        self._finishing: set = set()  # quick stop: connections whose WSGI request finishes
        self.metrics = None  # WorkerMetrics, when statsd or the Prometheus endpoint is on
        # () -> int: response bytes held for slow readers, for the spool.bytes gauge.
        self.spooled_bytes = spooled_bytes

    # -- gunicorn Worker API ------------------------------------------------

    @classmethod
    def check_config(cls, cfg, log) -> None:
        """Called by gunicorn's master at start, before it forks: a bad ASYNCWORKER_*
        value stops gunicorn there, and the warnings are logged once."""
        check_config(cfg, log)

    def init_process(self) -> None:
        try:  # checked in the master at start; a reload (HUP) may bring a bad value
            self.config = worker_config(self.cfg, os.environ)
        except ConfigError as exc:
            self.log.error("%s", exc)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
        retain_freed_heap(self.config.settings.malloc_retain)
        self.loop = new_event_loop(self.config.settings.loop)
        asyncio.set_event_loop(self.loop)
        route_loop_errors(self.loop, self.log)
        super().init_process()

    def init_signals(self) -> None:
        super().init_signals()
        loop = self.loop
        loop.add_signal_handler(signal.SIGTERM, self._graceful_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._quick_stop)
        loop.add_signal_handler(signal.SIGQUIT, self._quick_stop)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        loop.add_signal_handler(signal.SIGABRT, self._abort)

    def run(self) -> None:
        settings = self.config.settings  # (the app is loaded: see heap.py)
        freeze_startup_objects(settings.gc_freeze)
        raise_young_threshold(settings.gc_threshold)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self._close_loop()
        if self._quick_exit:
            sys.exit(0)

    # -- serving --------------------------------------------------------------

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        config = self.config
        serving = await serving_for(self, self.wsgi, config.settings.app_kind)
        self._app_kind = serving.kind
        self.log.info(startup_summary(config, serving.kind, loop_name(self.loop)))
        heartbeat = self.loop.create_task(self._heartbeat())
        try:
            await serving.startup()
            self.listeners = Listeners(self.loop, self.sockets, serving.protocol_factory, config.backlog,
                                       ssl=ssl_context(self.cfg, config.http2 is not None),
                                       ssl_handshake_timeout=config.settings.header_timeout,
                                       log=self.log, read_early=True, on_socket=True,
                                       tcp_keepalive=config.settings.tcp_keepalive,
                                       defer_accept=config.settings.defer_accept,
                                       app_threads=serving.app_threads,
                                       capacity=(self._open_connections, self.worker_connections),
                                       on_full=self._make_room)
            await self.listeners.start()
            self.metrics = worker_metrics(self)
            await self._stopping.wait()
            await self._drain_connections()
            await serving.shutdown()
        finally:
            heartbeat.cancel()
            if self.listeners is not None:
                self.listeners.close()
            for conn in list(self.connections):
                conn.close()
            if serving.close is not None:
                serving.close()
            if self.metrics is not None:
                self.metrics.close()

    async def _heartbeat(self) -> None:
        while True:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self._graceful_stop("parent changed")
                return
            if not self.alive:  # set from another thread, e.g. gunicorn's --reload watcher
                self._graceful_stop("no longer alive")
                return
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def _drain_connections(self) -> None:
        """Let the connections finish within graceful_timeout: every busy one after a
        graceful stop, the WSGI requests in the app after a quick one (which may come
        during a graceful stop: then it cuts the rest)."""
        quick = self._quick_exit
        if quick:
            self._cut_connections()
        else:
            self.listeners.close()
            for conn in list(self.connections):
                conn.closing()
        deadline = self.loop.time() + self.config.graceful_timeout
        while self.loop.time() < deadline:
            if self._quick_exit and not quick:
                quick = True
                self._cut_connections()
            left = self._finishing if quick else self.connections
            if not left:
                return
            self.notify()
            await asyncio.sleep(0.05)
        left = self._finishing if quick else self.connections
        if left:
            self.log.warning("Graceful timeout: closing %d connections", len(left))

    def _cut_connections(self) -> None:
        """Quick stop: close every connection now but those of WSGI requests already
        started, which finish their response (see the module's docstring)."""
        self.listeners.close(take_waiting=False)
        wsgi = self._app_kind == "wsgi"
        for conn in list(self.connections):
            if wsgi and conn.exchange is not None:
                self._finishing.add(conn)
                conn.closing()
            else:
                conn.close()

    # -- owner interface for protocols -----------------------------------------

    def connection_opened(self, conn) -> None:
        self.connections.add(conn)
        if not self.alive:
            conn.closing()

    def _make_room(self, take) -> bool:
        """Clients wait while the worker is full (worker_connections). Idle keep-alive
        connections make room, oldest first, as nginx reuses idle connections: as many
        waiting clients are taken (``take``, up to ROOM_BATCH) as idle ones then close.
        Without an idle one, busy keep-alive connections end after their current
        response, and as many waiting clients are taken at once: the queue moves in
        order without waiting for those responses and a pass of the loop over every
        connection. The busy ones let go no longer count: the worker holds at most
        ``worker_connections`` plus 1/32 of it (at most ROOM_BATCH); a small cap (under 32)
        is strict, the waiting clients then waiting for those responses (False: wait for
        connections to end). True: call again when a client waits."""
        staying = [c for c in self.connections if c not in self._leaving and c.keep_alive_allowed]
        idle = sorted((c for c in staying if c.idle_until is not None), key=lambda c: c.idle_until)
        if idle:
            self._let_go(idle, take, len(idle))
            return True
        room = min(ROOM_BATCH, self.worker_connections // OVER_CAP_SHARE) - len(self._leaving)
        if room <= 0 or not staying:
            for conn in itertools.islice(staying, ROOM_BATCH):  # the queue waits for their ends
                conn.release()
            return False  # (a connection let go, or any, ending calls again)
        return self._let_go(staying, take, room) < room

    def _let_go(self, connections: list, take, most: int) -> int:
        """Take up to ``most`` waiting clients and let as many of ``connections`` go."""
        taken = take(min(most, ROOM_BATCH)) if connections else 0
        for conn in connections[:taken]:
            self._leaving.add(conn)  # (an idle one closes now, a busy one after its response)
            conn.release()
        return taken

    def _open_connections(self) -> int:
        """Connections that count against worker_connections (not those let go)."""
        return len(self.connections) - len(self._leaving)

    def connection_closed(self, conn) -> None:
        self.connections.discard(conn)
        if self._finishing:  # (a quick stop's: empty otherwise)
            self._finishing.discard(conn)
        if self._leaving and conn in self._leaving:
            self._leaving.discard(conn)
            self.listeners.notify_waiting(self._make_room)  # (room to let more go, if still full)
        # (resume's own test first, then what _open_connections() and worker_connections say, inline:
        # every connection ends here)
        listeners = self.listeners
        if (listeners is not None and listeners.paused and self.alive
                and len(self.connections) - len(self._leaving) < self.config.worker_connections):
            listeners.resume()

    def request_done(self) -> None:
        self.nr += 1
        listeners = self.listeners
        if self.loop.time() > listeners.catch_up_after:  # (its first test, here: a call less per request)
            listeners.catch_up()
        if self.alive and self.nr >= self.max_requests:
            self.log.info("Autorestarting worker after current request.")
            self._graceful_stop("max_requests")

    @property
    def worker_connections(self) -> int:
        return self.config.worker_connections

    # -- signals --------------------------------------------------------------

    def _graceful_stop(self, why: str) -> None:
        if self.alive:
            self.log.info("Worker stopping gracefully (%s): %s", why, self)
        self.alive = False
        if self.listeners is not None:
            self.listeners.close()  # stop accepting at once, not on the next loop pass
        self._stop_metrics_endpoint()
        if self._stopping is not None:
            self._stopping.set()

    def _quick_stop(self) -> None:
        self.alive = False
        self._quick_exit = True
        self.cfg.worker_int(self)
        if self.listeners is not None:
            self.listeners.close(take_waiting=False)
        self._stop_metrics_endpoint()
        if self._stopping is not None:
            self._stopping.set()

    def _stop_metrics_endpoint(self) -> None:
        """Its port goes to the worker that replaces this one (prometheus.py)."""
        if self.metrics is not None:
            self.metrics.stop_serving()

    def _abort(self) -> None:
        self.alive = False
        self.cfg.worker_abort(self)
        sys.exit(1)

    def _close_loop(self) -> None:
        loop = self.loop
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            loop.close()
