"""The worker's load gauges: read once a second from the loop, sent to statsd, served to Prometheus.

    every GAUGE_INTERVAL s ──► read_gauges(worker) ──► StatsdGauges.send (gunicorn's statsd socket)
                                                  └──► PrometheusEndpoint (a GET /metrics reads them)

What a worker is doing now, which gunicorn's request metrics do not say:

- ``threads.busy``: WSGI app threads running a request; ``threads.waiting``: requests
  waiting for one; ``threads.longest_wait_ms``: how long the oldest of them has waited
  (sent only for WSGI apps, which have the pool);
- ``connections.idle``: connections kept alive between requests, waiting for the next
  one; ``connections.busy``: every other open connection (a request being read or
  answered, a WebSocket, a new connection before its first request);
- ``spool.bytes``: response bytes held for slow readers (in memory and temporary files,
  ``server.protocol.spool``), from ``worker.spooled_bytes`` (0 while it is None).

statsd gauges overwrite each other, so each worker sends its own: with gunicorn's
``dogstatsd_tags`` set (the server speaks DogStatsD) the names are the same for all
workers and a ``worker:<pid>`` tag is added to gunicorn's tags; without tags (plain
statsd, which refuses tagged lines) the pid is in the name:
``<prefix>asyncworker.<pid>.threads.busy``. The pid, not gunicorn's worker age, since
two masters (a USR2 upgrade) number their workers from the same start. A worker sends
zeros as it exits, so a sum over workers does not keep a gone worker's load.
"""

import os
from dataclasses import dataclass

from gunicorn.instrument.statsd import Statsd

from server.wsgi.pool import pool_on

from .prometheus import PrometheusEndpoint, render

GAUGE_INTERVAL = 1.0  # seconds between two readings


@dataclass(frozen=True, slots=True)
class Gauge:
    attribute: str  # of Gauges
    statsd_name: str  # after "asyncworker." (and the pid)
    help: str  # Prometheus's HELP line


GAUGE_LIST = (
    Gauge("threads_busy", "threads.busy", "WSGI app threads running a request."),
    Gauge("threads_waiting", "threads.waiting", "WSGI requests waiting for an app thread."),
    Gauge("longest_wait_ms", "threads.longest_wait_ms",
          "Milliseconds the oldest request waiting for an app thread has waited."),
    Gauge("connections_idle", "connections.idle", "Keep-alive connections waiting for their next request."),
    Gauge("connections_busy", "connections.busy",
          "Open connections that are not idle (a request read or answered, a WebSocket, a new connection)."),
    Gauge("spool_bytes", "spool.bytes", "Response bytes held for slow readers (memory and temporary files)."),
)
THREAD_GAUGES = {"threads_busy", "threads_waiting", "longest_wait_ms"}


@dataclass(frozen=True, slots=True)
class Gauges:
    threads_busy: int = 0
    threads_waiting: int = 0
    longest_wait_ms: int = 0
    connections_idle: int = 0
    connections_busy: int = 0
    spool_bytes: int = 0
    has_pool: bool = False  # False: the thread gauges mean nothing (ASGI, native apps)

    def items(self):
        """(Gauge, value) of the gauges that apply to this worker."""
        return [(gauge, getattr(self, gauge.attribute)) for gauge in GAUGE_LIST
                if self.has_pool or gauge.attribute not in THREAD_GAUGES]


def read_gauges(worker) -> Gauges:
    """The worker's gauges now: a pass over its connections, a look at its pool."""
    connections = worker.connections
    idle = sum(1 for conn in connections if conn.idle_until is not None)
    spooled = worker.spooled_bytes
    values = dict(connections_idle=idle, connections_busy=len(connections) - idle,
                  spool_bytes=int(spooled()) if spooled is not None else 0)
    pool = pool_on(worker.loop)
    if pool is not None:
        waiting, longest = pool.waiting()
        values.update(has_pool=True, threads_busy=pool.busy(), threads_waiting=waiting,
                      longest_wait_ms=round(longest * 1000))
    return Gauges(**values)


class StatsdGauges:
    """Sends the gauges in one datagram on gunicorn's statsd socket, with its prefix and tags."""

    def __init__(self, log: Statsd, pid: int):
        self._log = log
        tags = log.dogstatsd_tags
        if tags:
            self._names = "asyncworker."
            self._tags = f"|#{tags},worker:{pid}"
        else:
            self._names = f"asyncworker.{pid}."
            self._tags = ""

    def send(self, gauges: Gauges) -> None:
        log = self._log
        if log.sock is None:
            return
        start = log.prefix + self._names
        lines = [f"{start}{gauge.statsd_name}:{value}|g{self._tags}" for gauge, value in gauges.items()]
        try:
            log.sock.send("\n".join(lines).encode("ascii"))
        except OSError:  # no statsd listening yet (a refused datagram): the next reading goes
            pass


def statsd_of(log, pid: int | None = None) -> StatsdGauges | None:
    """Gauges for gunicorn's statsd logger (``--statsd-host``); None without one."""
    if not isinstance(log, Statsd):
        return None
    return StatsdGauges(log, os.getpid() if pid is None else pid)


def worker_metrics(worker) -> "WorkerMetrics | None":
    """The worker's metrics, started: statsd gauges with ``--statsd-host``, a Prometheus
    endpoint with ASYNCWORKER_METRICS_BIND; None (nothing to do) without either."""
    statsd = statsd_of(worker.log)
    bind = worker.config.settings.metrics_bind
    if statsd is None and not bind:
        return None
    metrics = WorkerMetrics(worker, statsd)
    if bind:
        pid = os.getpid()
        metrics.endpoint = PrometheusEndpoint(
            worker.loop, bind, worker.config.workers, lambda: render(read_gauges(worker), worker.nr, pid),
            log=worker.log)
    metrics.start()
    return metrics


class WorkerMetrics:
    """Reads the gauges every GAUGE_INTERVAL seconds for statsd; a Prometheus endpoint
    reads them when it is scraped."""

    def __init__(self, worker, statsd: StatsdGauges | None, endpoint: PrometheusEndpoint | None = None):
        self._worker = worker
        self._statsd = statsd
        self.endpoint = endpoint
        self._timer = None
        self._has_pool = False  # at the last reading

    def start(self) -> None:
        if self.endpoint is not None:
            self.endpoint.start()
        if self._statsd is not None:
            self._tick()

    def _tick(self) -> None:
        self._timer = self._worker.loop.call_later(GAUGE_INTERVAL, self._tick)
        gauges = read_gauges(self._worker)
        self._has_pool = gauges.has_pool
        self._statsd.send(gauges)

    def stop_serving(self) -> None:
        """The worker is stopping: the endpoint's port goes to the worker replacing it."""
        if self.endpoint is not None:
            self.endpoint.close()

    def close(self) -> None:
        """Last: stop the readings and send zeros (see the module's docstring)."""
        self.stop_serving()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._statsd.send(Gauges(has_pool=self._has_pool))
