"""The worker's load gauges through gunicorn's statsd client (``--statsd-host``): app
threads busy and waiting, the longest wait, idle and busy connections, spooled bytes;
once a second, per worker (its pid in the name, or a ``worker:<pid>`` tag with
``dogstatsd_tags``), zeros as it exits."""

import re
import signal
import socket
import threading
import time

import pytest

from helpers import Gunicorn, connect, kept_connections, read_response, wait_until

GAUGE = re.compile(r"^edge\.asyncworker\.(?:(\d+)\.)?([a-z_.]+):(\d+)\|g(?:\|#(.*))?$")


class StatsdServer:
    """A real UDP socket; a thread keeps what arrives as (name, value, tags) per datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.readings: list[dict] = []  # one per datagram of gauges: name -> value
        self.pids: set = set()
        self.tags: set = set()
        self._done = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done:
            try:
                datagram = self.sock.recv(65536).decode()
            except TimeoutError:
                continue
            reading = {}
            for line in datagram.splitlines():
                match = GAUGE.match(line)
                if match:
                    pid, name, value, tags = match.groups()
                    reading[name] = int(value)
                    self.pids.add(pid)
                    self.tags.add(tags)
            if reading:
                self.readings.append(reading)

    def seen(self, **wanted) -> dict | None:
        """The first reading where each wanted gauge holds (a value, or a predicate)."""
        for reading in list(self.readings):
            if all(callable(want) and want(reading.get(name)) or reading.get(name) == want
                   for name, want in wanted.items()):
                return reading
        return None

    def close(self) -> None:
        self._done = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def statsd():
    server = StatsdServer()
    yield server
    server.close()


def statsd_args(statsd, *extra):
    return ("--statsd-host", f"127.0.0.1:{statsd.port}", "--statsd-prefix", "edge", *extra)


def sleep_requests(port: int, count: int, seconds: float) -> list:
    """``count`` requests of ``seconds`` at once, on kept connections (see kept_connections)."""
    statuses = []

    def get(sock):
        with sock:
            sock.sendall(f"GET /sleep?s={seconds} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            statuses.append(read_response(sock).status)

    clients = [threading.Thread(target=get, args=(sock,)) for sock in kept_connections(port, count)]
    for client in clients:
        client.start()
    return clients, statuses


def test_thread_gauges_follow_a_saturated_pool_and_come_back_to_zero(statsd):
    with Gunicorn("slow_apps:wsgi_app", *statsd_args(statsd), threads=2) as srv:
        pid = str(srv.worker_pids()[0])
        clients, statuses = sleep_requests(srv.port, 6, 2)
        saturated = wait_until(lambda: statsd.seen(**{"threads.busy": 2, "threads.waiting": lambda v: v >= 3,
                                                      "threads.longest_wait_ms": lambda v: v > 0}),
                               10, what="a reading of a saturated pool")
        for client in clients:
            client.join(30)
        assert statuses == [200] * 6
        start = len(statsd.readings)
        wait_until(lambda: len(statsd.readings) > start + 1, 5, what="readings after the load")
        after = statsd.readings[-1]
    assert saturated["connections.busy"] == 6 and saturated["spool.bytes"] == 0, saturated
    assert max(r["threads.busy"] for r in statsd.readings) == 2  # never more than --threads
    assert after == {"threads.busy": 0, "threads.waiting": 0, "threads.longest_wait_ms": 0,
                     "connections.idle": 0, "connections.busy": 0, "spool.bytes": 0}
    assert statsd.pids == {pid} and statsd.tags == {None}  # plain statsd: the pid in the name


def test_connection_gauges_count_idle_keep_alive_and_busy_connections(statsd):
    with Gunicorn("slow_apps:wsgi_app", *statsd_args(statsd), "--keep-alive", "30", threads=4) as srv:
        idle = [connect(srv.port) for _ in range(3)]
        for sock in idle:
            sock.sendall(b"GET /sleep?s=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock).status == 200
        clients, _ = sleep_requests(srv.port, 2, 3)
        reading = wait_until(lambda: statsd.seen(**{"connections.idle": 3, "connections.busy": 2}), 5,
                             what="3 idle and 2 busy connections")
        for sock in idle:
            sock.close()
        for client in clients:
            client.join(30)
        wait_until(lambda: statsd.readings[-1]["connections.idle"] == 0, 5, what="the idle ones gone")
    assert reading["threads.busy"] == 2


def test_dogstatsd_tags_name_the_worker_in_a_tag_and_asgi_has_no_thread_gauges(statsd):
    with Gunicorn("slow_apps:app", *statsd_args(statsd, "--dogstatsd-tags", "env:test")) as srv:
        pid = srv.worker_pids()[0]
        wait_until(lambda: statsd.readings, 5, what="a reading")
        reading = statsd.readings[0]
    assert statsd.pids == {None} and statsd.tags == {f"env:test,worker:{pid}"}
    assert set(reading) == {"connections.idle", "connections.busy", "spool.bytes"}


def test_a_worker_sends_zeros_as_it_exits(statsd):
    """A request cut by a quick stop (ASGI) leaves no busy connection in the sums."""
    with Gunicorn("slow_apps:app", *statsd_args(statsd)) as srv:
        with connect(srv.port) as sock:
            sock.sendall(b"GET /sleep?s=30 HTTP/1.1\r\nHost: t\r\n\r\n")
            wait_until(lambda: statsd.seen(**{"connections.busy": 1}), 5, what="a busy connection")
            srv.signal(signal.SIGQUIT)
            srv.proc.wait(10)
        time.sleep(0.3)
    assert statsd.readings[-1] == {"connections.idle": 0, "connections.busy": 0, "spool.bytes": 0}



def test_the_spool_gauge_holds_what_a_slow_reader_has_not_read(statsd, tmp_path):
    """A client that reads nothing of a 24 MiB response: the app is done at once, the spool
    holds the bytes the sockets did not take (the kernel's send buffer may take some MiB),
    and the gauge says so until the client leaves."""
    size = 24 * 1024 * 1024
    with Gunicorn("slow_reader_apps:app", *statsd_args(statsd), threads=2,
                  env={"WORKER_APPS_DIR": str(tmp_path), "ASYNCWORKER_RATE_GRACE": "60"}) as srv:
        sock = connect(srv.port, timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET /stream?n={size}&name=g HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        held = wait_until(lambda: statsd.seen(**{"spool.bytes": lambda v: v is not None and v > 12 * 1024 * 1024}),
                          10, what="the unread bytes in the spool gauge")
        sock.close()
        wait_until(lambda: statsd.readings[-1]["spool.bytes"] == 0, 5, what="the spool given back")
    assert held["spool.bytes"] <= size and held["connections.busy"] == 1
