"""An optional Prometheus endpoint of each worker: ``GET /metrics``, text format 0.0.4.

Off by default; ``ASYNCWORKER_METRICS_BIND=HOST:PORT`` turns it on. Several workers
cannot each bind one port (with SO_REUSEPORT a scrape would reach a random worker), and
gunicorn's master runs none of this worker's code, so each worker serves its own
gauges on the first free port of ``PORT .. PORT+workers-1``. A worker that stops
frees its port as it starts stopping, for the worker replacing it: the ports stay
the same set, one target each for Prometheus, which sums over them. A worker that
finds none free (a HUP reload starts the new workers before the old ones stop) tries
again every RETRY_INTERVAL seconds.

The server runs on the worker's loop, not through the app: one request per connection,
its head at most MAX_HEAD bytes and within SCRAPE_TIMEOUT seconds, at most MAX_SCRAPERS
connections at once (more are closed unanswered).
"""

import asyncio
import errno
import socket

MAX_HEAD = 8 * 1024  # bytes of a scrape's request head
SCRAPE_TIMEOUT = 2.0  # seconds for a scraper to send its request
MAX_SCRAPERS = 8  # connections at once
RETRY_INTERVAL = 1.0  # seconds between looks for a free port
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(gauges, requests: int, pid: int) -> bytes:
    """The text format 0.0.4: a HELP and a TYPE line and a sample per metric."""
    lines = []
    for gauge, value in gauges.items():
        name = "asyncworker_" + gauge.statsd_name.replace(".", "_")
        lines += [f"# HELP {name} {gauge.help}", f"# TYPE {name} gauge", f"{name} {value}"]
    lines += ["# HELP asyncworker_requests_total Requests answered by this worker since it started.",
              "# TYPE asyncworker_requests_total counter", f"asyncworker_requests_total {requests}",
              "# HELP asyncworker_worker_info The worker serving this port.",
              "# TYPE asyncworker_worker_info gauge", f'asyncworker_worker_info{{pid="{pid}"}} 1']
    return ("\n".join(lines) + "\n").encode("ascii")


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (checked by settings.py) as (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class PrometheusEndpoint:
    """Binds the first free port of its range, and serves ``body()`` (bytes) at /metrics."""

    def __init__(self, loop, address: str, slots: int, body, log=None):
        self._loop = loop
        self._host, self._base = split_address(address)
        self._slots = max(1, slots)
        self._body = body
        self._log = log
        self._server: asyncio.AbstractServer | None = None
        self._task: asyncio.Task | None = None
        self.scrapers: set = set()
        self.port: int | None = None  # bound

    def start(self) -> None:
        self._task = self._loop.create_task(self._bind_when_free())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._server is not None:
            self._server.close()
            self._server = None
        for scraper in list(self.scrapers):
            scraper.transport.close()

    async def _bind_when_free(self) -> None:
        warned = False
        while True:
            try:
                sock = self._bind_free_port()
            except OSError as exc:  # a host of no interface here, a port below 1024...
                if self._log is not None:
                    self._log.error("Metrics endpoint: cannot listen on %s:%d: %s", self._host, self._base, exc)
                return
            if sock is not None:
                break
            if not warned and self._log is not None:
                warned = True
                self._log.warning("Metrics endpoint: ports %d-%d all taken, trying again every %g s",
                                  self._base, self._base + self._slots - 1, RETRY_INTERVAL)
            await asyncio.sleep(RETRY_INTERVAL)
        self._server = await self._loop.create_server(lambda: _Scrape(self), sock=sock)
        self.port = sock.getsockname()[1]
        if self._log is not None:
            self._log.info("Metrics endpoint: http://%s:%d/metrics", self._host, self.port)

    def _bind_free_port(self) -> socket.socket | None:
        for port in range(self._base, min(self._base + self._slots, 65536)):
            family, kind, proto, _, address = socket.getaddrinfo(
                self._host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
            sock = socket.socket(family, kind, proto)
            try:
                # (a port left in TIME_WAIT by a previous worker is free; a listening one is not)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                sock.listen(MAX_SCRAPERS)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            sock.setblocking(False)
            return sock
        return None


class _Scrape(asyncio.Protocol):
    """One scrape: a request head, one response, close."""

    def __init__(self, endpoint: PrometheusEndpoint):
        self._endpoint = endpoint
        self._head = b""
        self._timer = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        scrapers = self._endpoint.scrapers
        if len(scrapers) >= MAX_SCRAPERS:
            transport.close()
            return
        scrapers.add(self)
        self._timer = asyncio.get_running_loop().call_later(SCRAPE_TIMEOUT, transport.close)

    def connection_lost(self, exc) -> None:
        self._endpoint.scrapers.discard(self)
        if self._timer is not None:
            self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        head = self._head + data
        if b"\r\n\r\n" not in head and b"\n\n" not in head:
            if len(head) > MAX_HEAD:
                self._answer("431 Request Header Fields Too Large", b"request head too large\n")
            self._head = head
            return
        parts = head.split(b"\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._answer("400 Bad Request", b"bad request\n")
        elif parts[0] != b"GET":
            self._answer("405 Method Not Allowed", b"GET /metrics only\n", b"Allow: GET\r\n")
        elif parts[1].split(b"?", 1)[0] != b"/metrics":
            self._answer("404 Not Found", b"GET /metrics only\n")
        else:
            self._answer("200 OK", self._endpoint._body(), f"Content-Type: {CONTENT_TYPE}\r\n".encode())

    def _answer(self, status: str, body: bytes, fields: bytes = b"") -> None:
        self.transport.write(b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                             % (status.encode(), fields, len(body), body))
        self.transport.close()
