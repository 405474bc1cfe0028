"""The optional Prometheus endpoint (ASYNCWORKER_METRICS_BIND): off by default; each worker
serves GET /metrics (text format 0.0.4) on its own port of PORT..PORT+workers-1, from its
loop and not through the app, with bounds on what a scraper may send."""

import os
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from helpers import Gunicorn, connect, free_port, kept_connections, read_response, read_until_eof, wait_until

from server.workers.config import metrics_ports
from server.workers.prometheus import MAX_HEAD, MAX_SCRAPERS, SCRAPE_TIMEOUT
from server.workers.settings import ConfigError, WorkerSettings

SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\d+)$")


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that were free a moment ago."""
    for _ in range(50):
        base = free_port()
        if base + count < 65536 and all(_free(base + i) for i in range(1, count)):
            return base
    raise RuntimeError("no free range of ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def scrape(port: int, path: str = "/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def samples(text: str) -> dict:
    values = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = int(match.group(3))
    return values


def metrics_server(port: int, *args, app="slow_apps:wsgi_app", **kwargs) -> Gunicorn:
    return Gunicorn(app, *args, env={"ASYNCWORKER_METRICS_BIND": f"127.0.0.1:{port}"}, **kwargs)


def listening_ports(pid: int) -> set:
    """The TCP ports process ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_off_by_default_and_on_with_the_setting():
    with Gunicorn("slow_apps:wsgi_app") as srv:
        off = listening_ports(srv.worker_pids()[0])
        off_port = srv.port
    port = free_ports(1)
    with metrics_server(port) as srv:
        wait_until(lambda: port in listening_ports(srv.worker_pids()[0]), 5, what="the metrics port")
        on = listening_ports(srv.worker_pids()[0])
        on_port = srv.port
    assert off == {off_port}
    assert on == {on_port, port}


def test_a_scrape_shows_a_saturated_pool_and_keep_alive_connections():
    port = free_ports(1)
    with metrics_server(port, "--keep-alive", "30", threads=2) as srv:
        wait_until(lambda: port in listening_ports(srv.worker_pids()[0]), 5, what="the metrics port")
        status, content_type, text = scrape(port)
        idle = [connect(srv.port) for _ in range(2)]
        for sock in idle:
            sock.sendall(b"GET /sleep?s=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock).status == 200
        statuses = []

        def get(sock):
            with sock:
                sock.sendall(b"GET /sleep?s=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                statuses.append(read_response(sock).status)

        clients = [threading.Thread(target=get, args=(sock,)) for sock in kept_connections(srv.port, 6)]
        for client in clients:
            client.start()

        def saturated():
            values = samples(scrape(port)[2])
            # (all six in: two running, four waiting; the last ones may be sent a little later)
            full = values["asyncworker_threads_busy"] == 2 and values["asyncworker_threads_waiting"] == 4
            return values if full and values["asyncworker_threads_longest_wait_ms"] > 0 else None

        during = wait_until(saturated, 10, interval=0.1, what="a saturated pool in a scrape")
        for client in clients:
            client.join(30)
        wait_until(lambda: samples(scrape(port)[2])["asyncworker_connections_busy"] == 0, 5,
                   what="the busy connections gone")
        after = samples(scrape(port)[2])
        for sock in idle:
            sock.close()
        pid = srv.worker_pids()[0]
    assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    for name in ("threads_busy", "threads_waiting", "threads_longest_wait_ms", "connections_idle",
                 "connections_busy", "spool_bytes"):
        assert f"# TYPE asyncworker_{name} gauge\n" in text and f"# HELP asyncworker_{name} " in text
    assert "# TYPE asyncworker_requests_total counter\n" in text
    assert statuses == [200] * 6
    assert during["asyncworker_connections_idle"] == 2 and during["asyncworker_connections_busy"] == 6
    assert after["asyncworker_threads_busy"] == after["asyncworker_threads_waiting"] == 0
    assert after["asyncworker_connections_idle"] == 2
    assert after["asyncworker_requests_total"] == 14
    assert after[f'asyncworker_worker_info{{pid="{pid}"}}'] == 1


def _pid_on(port: int):
    try:
        return next(int(k.split('"')[1]) for k in samples(scrape(port)[2]) if k.startswith("asyncworker_worker_info"))
    except OSError:
        return None


def test_each_worker_has_its_port_and_a_replacement_takes_the_one_freed():
    port = free_ports(3)
    with metrics_server(port, "--workers", "2") as srv:
        wait_until(lambda: len(srv.worker_pids()) == 2 and all(_pid_on(p) for p in (port, port + 1)), 10,
                   what="both workers' endpoints")
        first = {p: _pid_on(p) for p in (port, port + 1)}
        assert sorted(first.values()) == srv.worker_pids()
        os.kill(first[port], signal.SIGTERM)  # gunicorn starts a new worker
        wait_until(lambda: _pid_on(port) not in (None, first[port]), 15, what="the replacement on the freed port")
        assert _pid_on(port + 1) == first[port + 1]
        assert sorted([_pid_on(port), _pid_on(port + 1)]) == srv.worker_pids()
        assert not _free(port) and _free(port + 2)


def test_a_worker_waits_for_a_taken_port_and_takes_it_once_free():
    port = free_ports(1)
    holder = socket.create_server(("127.0.0.1", port))
    try:
        with metrics_server(port) as srv:
            wait_until(lambda: "all taken, trying again every 1 s" in srv.log_text(), 5, what="the warning")
            assert port not in listening_ports(srv.worker_pids()[0])
            holder.close()
            freed = time.monotonic()
            wait_until(lambda: port in listening_ports(srv.worker_pids()[0]), 5, what="the port taken")
            taken_after = time.monotonic() - freed
            assert _pid_on(port) == srv.worker_pids()[0]
            assert srv.log_text().count("all taken") == 1  # warned once, not every second
    finally:
        holder.close()
    assert taken_after < 2.5, taken_after


def test_an_address_that_cannot_be_bound_is_logged_and_the_app_still_served():
    with Gunicorn("slow_apps:wsgi_app", env={"ASYNCWORKER_METRICS_BIND": "192.0.2.1:9100"}) as srv:
        wait_until(lambda: "Metrics endpoint: cannot listen on 192.0.2.1:9100" in srv.log_text(), 5,
                   what="the error")
        with connect(srv.port) as sock:
            sock.sendall(b"GET /sleep?s=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock).status == 200


def test_what_a_scraper_may_send_is_bounded():
    port = free_ports(1)
    with metrics_server(port) as srv:
        wait_until(lambda: port in listening_ports(srv.worker_pids()[0]), 5, what="the metrics port")
        with pytest.raises(urllib.error.HTTPError) as not_found:
            scrape(port, "/")
        with connect(port) as sock:
            sock.sendall(b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            not_allowed = read_response(sock)
        with connect(port) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"x" * MAX_HEAD)
            too_large = read_response(sock)
        with connect(port, timeout=10) as sock:
            t0 = time.monotonic()
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            silent = read_until_eof(sock, 10), time.monotonic() - t0
        waiting = [connect(port) for _ in range(MAX_SCRAPERS)]
        time.sleep(0.2)
        with connect(port) as sock:
            one_too_many = read_until_eof(sock, 1)
        for sock in waiting:
            sock.close()
        time.sleep(0.2)
        assert scrape(port)[0] == 200  # room again
    assert not_found.value.code == 404
    assert (not_allowed.status, not_allowed.header("allow")) == (405, "GET")
    assert too_large.status == 431
    assert silent[0] == (b"", True) and SCRAPE_TIMEOUT - 0.5 < silent[1] < SCRAPE_TIMEOUT + 3, silent
    assert one_too_many == (b"", True)


@pytest.mark.parametrize("value", ["9100", "localhost", "127.0.0.1:0", "127.0.0.1:65536", ":9100", "host:port"])
def test_a_bad_metrics_bind_names_the_variable_and_what_it_takes(value):
    with pytest.raises(ConfigError) as error:
        WorkerSettings.from_env({"ASYNCWORKER_METRICS_BIND": value})
    assert str(error.value) == (f"Invalid value for ASYNCWORKER_METRICS_BIND: {value!r} "
                                "(expected HOST:PORT, e.g. 127.0.0.1:9100, or empty for none)")


def test_good_metrics_binds_and_the_port_range_of_the_workers():
    assert WorkerSettings.from_env({}).metrics_bind == ""
    assert WorkerSettings.from_env({"ASYNCWORKER_METRICS_BIND": "[::1]:9100"}).metrics_bind == "[::1]:9100"
    assert metrics_ports("127.0.0.1:65534", 2) == 2
    with pytest.raises(ConfigError, match="2 workers take 2 ports"):
        metrics_ports("127.0.0.1:65535", 2)


def test_gunicorn_refuses_to_start_with_a_bad_metrics_bind():
    with pytest.raises(RuntimeError, match="Invalid value for ASYNCWORKER_METRICS_BIND: '9100'"):
        with Gunicorn("slow_apps:wsgi_app", env={"ASYNCWORKER_METRICS_BIND": "9100"}):
            pass
