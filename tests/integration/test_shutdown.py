"""AsyncWorker lifecycle and failure paths against real gunicorn processes: graceful
shutdown (SIGTERM) within and past graceful_timeout, max_requests restarts, app errors
before and after the head, close() of abandoned iterables, the access log and SIGUSR1."""

import itertools
import os
import re
import signal
import socket
import time
from collections import Counter

import pytest

from helpers import Gunicorn, connect, parse_responses, read_response, read_until_eof, wait_until
from worker_support import fetch, get, hits, started, timed_eof, worker_server


# --- 4. graceful shutdown ------------------------------------------------------

def test_sigterm_finishes_in_flight_requests_closes_idle_ones_and_exits_0(tmp_path):
    with worker_server(tmp_path, "--graceful-timeout", "10", "--keep-alive", "30", threads=10) as server:
        idle = connect(server.port)
        idle.sendall(get("/idle"))
        assert read_response(idle).status == 200
        busy = [connect(server.port, timeout=10) for _ in range(10)]
        try:
            for sock in busy:
                sock.sendall(get("/slow?s=2"))
            wait_until(lambda: started(tmp_path) == 10, 5, what="10 requests in the app")

            t0 = time.monotonic()
            server.signal(signal.SIGTERM)
            data, closed, _ = timed_eof(idle, 5)
            idle_closed_after = time.monotonic() - t0
            assert (data, closed) == (b"", True)
            assert idle_closed_after < 1, idle_closed_after

            # The worker has stopped accepting: a new connection is refused, or closed unanswered
            # (today it waits in the kernel's queue of the worker's inherited listening socket
            # and is reset when the worker exits, ~2 s later).
            wait_until(lambda: "Worker stopping gracefully" in server.log_text(), 5, what="worker stopping")
            try:
                with connect(server.port, timeout=5) as late:
                    late.sendall(get("/late"))
                    data, closed = read_until_eof(late, 10)
                assert (data, closed) == (b"", True)
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
                pass

            for sock in busy:
                resp = read_response(sock)
                assert (resp.status, resp.body) == (200, b"slept 2.0")
                assert (resp.header("connection") or "").lower() == "close", resp.headers
                assert read_until_eof(sock, 5) == (b"", True)
            assert server.proc.wait(15) == 0
        finally:
            idle.close()
            for sock in busy:
                sock.close()
    assert "/late" not in hits(tmp_path)
    assert hits(tmp_path).count("/slow") == 10


# --- 5. graceful timeout crossed -------------------------------------------------

def test_graceful_timeout_cuts_a_hanging_request(tmp_path):
    with worker_server(tmp_path, "--graceful-timeout", "2") as server, connect(server.port) as sock:
        sock.sendall(get("/hang"))
        wait_until(lambda: started(tmp_path) == 1, 5, what="/hang in the app")
        t0 = time.monotonic()
        server.signal(signal.SIGTERM)
        data, closed = read_until_eof(sock, 8)
        elapsed = time.monotonic() - t0
        assert (data, closed) == (b"", True)
        assert 1.5 <= elapsed < 5, elapsed
        server.proc.wait(max(0.1, 5 - (time.monotonic() - t0)))
        assert server.proc.returncode == 0


# --- 6. max_requests --------------------------------------------------------------

def test_max_requests_restarts_the_worker_without_failing_a_request(tmp_path):
    """Sequential requests, each on a new connection read at full speed (the next one is
    sent the moment the previous response is in): none may fail across two restarts."""
    with worker_server(tmp_path, "--max-requests", "5", "--max-requests-jitter", "0") as server:
        first = server.worker_pids()
        pids = []
        for i in range(14):
            try:
                resp = fetch(server.port, "/count", timeout=10)
            except OSError as exc:
                pytest.fail(f"request {i + 1} failed: {exc!r} (pids so far {pids})")
            assert resp is not None and resp.status == 200, (i + 1, resp, pids)
            pids.append(int(resp.body))
        a = pids[0]
        assert [a] == first
        assert pids[:5] == [a] * 5 and a not in pids[6:], pids  # at most one accepted as it stopped
        assert max(Counter(pids).values()) <= 6 and len(set(pids)) >= 3, pids
        wait_until(lambda: server.worker_pids() == [pids[-1]], 5, what="only the last worker left")


# --- 9. application errors ----------------------------------------------------------

@pytest.fixture(scope="module")
def errors_server(tmp_path_factory):
    marks = tmp_path_factory.mktemp("errors")
    closed_file = marks / "closed-by-env"
    with worker_server(marks, env={"WORKER_APPS_CLOSED_FILE": str(closed_file)}) as server:
        server.closed_file = closed_file
        yield server


def test_exception_before_start_response_gives_500_and_keeps_the_connection(errors_server):
    with connect(errors_server.port) as sock:
        sock.sendall(get("/raise-before"))
        error = read_response(sock)
        sock.sendall(get("/next"))
        resp = read_response(sock)
    assert error.status == 500
    assert (error.header("connection") or "").lower() != "close"
    assert (resp.status, resp.body) == (200, b"/next")


def test_exception_after_the_first_chunk_cuts_the_chunked_body(errors_server):
    with connect(errors_server.port) as sock:
        sock.sendall(get("/raise-after"))
        data, closed = read_until_eof(sock, 5)
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"transfer-encoding: chunked" in head.lower(), head
    assert body == b"c\r\nfirst chunk\n\r\n", body  # no terminating 0\r\n\r\n
    with pytest.raises(ValueError):
        parse_responses(data)
    assert fetch(errors_server.port, "/after-cut").body == b"/after-cut"


@pytest.mark.parametrize("path, name", [("/big?n=104857600", "big"), ("/stream", "stream")])
def test_iterable_closed_when_the_client_disconnects_mid_stream(errors_server, path, name):
    def closes():
        try:
            return errors_server.closed_file.read_text().split().count(name)
        except FileNotFoundError:
            return 0

    before = closes()
    with connect(errors_server.port) as sock:
        sock.sendall(get(path))
        received = b""
        while not received.partition(b"\r\n\r\n")[2]:  # the head and a first piece of the body
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    wait_until(lambda: closes() > before, 5, what=f"close() of the {name} iterable")
    assert fetch(errors_server.port, "/still-serving").status == 200


def test_debug_0_keeps_tracebacks_out_of_500_pages(tmp_path):
    with worker_server(tmp_path, "--env", "ASYNCWORKER_DEBUG=0") as server:
        error = fetch(server.port, "/raise-before")
    assert error.status == 500
    assert b"Traceback" not in error.body and b"boom" not in error.body, error.body


# --- 10. access log --------------------------------------------------------------------

ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %({x-test}i)s %(D)s %(L)s %({content-type}o)s'


def _line_with(path, needle: str):
    try:
        return next((line for line in path.read_text().splitlines() if needle in line), None)
    except FileNotFoundError:
        return None


def test_access_log_line_has_the_requested_atoms(tmp_path):
    log = tmp_path / "access.log"
    with worker_server(tmp_path, "--access-logfile", str(log), "--access-logformat", ACCESS_FORMAT) as server:
        with connect(server.port) as sock:
            sock.sendall(get("/logged?q=1", "X-Test: abc"))
            assert read_response(sock).body == b"/logged"
        line = wait_until(lambda: _line_with(log, "/logged"), 5, what="the access log line")
    m = re.fullmatch(r'127\.0\.0\.1 "GET /logged\?q=1 HTTP/1\.1" 200 7 abc (\d+) (\d+\.\d{6}) text/plain', line)
    assert m, line
    micros, seconds = int(m.group(1)), float(m.group(2))
    assert micros == round(seconds * 1_000_000) and micros < 5_000_000, line


# --- 13. SIGUSR1 reopens the log files ----------------------------------------------------

def test_sigusr1_reopens_the_access_log(tmp_path):
    log, rotated = tmp_path / "access.log", tmp_path / "access.log.1"
    with worker_server(tmp_path, "--access-logfile", str(log)) as server:
        worker = server.worker_pids()
        assert fetch(server.port, "/before").status == 200
        wait_until(lambda: _line_with(log, "/before"), 5, what="the first access log line")
        log.rename(rotated)
        server.signal(signal.SIGUSR1)
        numbers = itertools.count()

        def logged_in_new_file():
            path = f"/after{next(numbers)}"
            assert fetch(server.port, path).status == 200
            return _line_with(log, "/after")

        wait_until(logged_in_new_file, 5, interval=0.05, what="a line in the reopened access log")
        assert server.worker_pids() == worker  # reopened, not restarted
    assert _line_with(rotated, "/before") and not _line_with(log, "/before")


def test_reload_restarts_the_worker_when_the_app_changes(tmp_path):
    """gunicorn's --reload watcher only clears `alive` from its own thread: the loop must notice."""
    app = tmp_path / "reload_app.py"
    app.write_text("def app(environ, start_response):\n"
                   "    start_response('200 OK', [])\n    return [b'one']\n")
    with Gunicorn("reload_app:app", "--reload", chdir=str(tmp_path)) as server:
        first = server.worker_pids()
        assert fetch(server.port, "/", timeout=5).body == b"one"
        app.write_text(app.read_text().replace("b'one'", "b'two'"))

        def restarted():
            # gunicorn's polling reloader records a file's mtime on its first pass, which may
            # come after the edit above: moving the mtime on makes the change seen either way.
            if server.worker_pids() and server.worker_pids() != first:
                return True
            bumped = app.stat().st_mtime + 1
            os.utime(app, (bumped, bumped))
            return False

        wait_until(restarted, 15, interval=0.2, what="a new worker after the reload")
        wait_until(lambda: _body_or_none(server.port) == b"two", 15, what="the new code served")


def _body_or_none(port):
    try:
        return fetch(port, "/", timeout=2).body
    except OSError:
        return None


def test_a_client_after_sigterm_is_refused_at_once_while_in_flight_requests_finish(tmp_path):
    """gunicorn's arbiter closes its listening sockets on TERM; the worker closes its own
    copies as it stops accepting, so a client that comes later is refused at once rather
    than left in an accept queue nobody reads until the worker exits."""
    started_marks = tmp_path / "started"
    with Gunicorn("slow_apps:app", "--graceful-timeout", "10", env={"MARKS": str(tmp_path)}) as srv:
        in_flight = [connect(srv.port) for _ in range(20)]
        for sock in in_flight:
            sock.sendall(b"GET /sleep?s=1.5 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(lambda: started_marks.exists() and len(started_marks.read_text().splitlines()) == 20, 5,
                   what="twenty requests in the app")
        srv.signal(signal.SIGTERM)
        time.sleep(0.3)  # the client of the test comes 0.3 s after the stop
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        refused_after = time.monotonic() - started
        statuses = []
        for sock in in_flight:
            statuses.append(read_response(sock).status)
            sock.close()
    assert refused_after < 0.05
    assert statuses == [200] * 20
