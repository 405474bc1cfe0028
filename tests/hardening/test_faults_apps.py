"""Faulty applications against a real worker: exceptions at every stage of a response, a
hung app, an app that kills its process, and a client that leaves mid-response.

(test_shutdown.py already covers an exception before start_response on a kept connection,
one after the first chunk, and close() on a disconnect; these add the other stages, the
effect on concurrent clients and what reaches the log.)"""

import signal
import threading
import time

import pytest

from hardening_support import hardening_server, is_asyncworker, request, the_worker, timed_get
from helpers import connect, parse_responses, read_response, read_until_eof, wait_until
from worker_support import started


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    marks = tmp_path_factory.mktemp("faulty-apps")
    with hardening_server(marks, "--keep-alive", "30", "--graceful-timeout", "1") as srv:
        srv.marks = marks
        yield srv


def closes(marks, name: str) -> int:
    try:
        return (marks / "closed").read_text().split().count(name)
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("path", ["/raise-before", "/raise-in-start-response", "/raise-after-start-response",
                                  "/raise-in-first-piece"])
def test_exception_before_the_head_gives_500_and_the_connection_goes_on(server, path):
    with connect(server.port) as sock:
        sock.sendall(request("GET", path))
        error = read_response(sock)
        sock.sendall(request("GET", "/next"))
        after = read_response(sock)
    assert error.status == 500, error
    assert (after.status, after.body) == (200, b"/next")


def test_exception_in_the_body_cuts_the_response_and_others_are_unaffected(server):
    with connect(server.port) as sock:
        sock.sendall(request("GET", "/raise-after"))
        data, closed = read_until_eof(sock, 5)
    assert closed and data.startswith(b"HTTP/1.1 200 ") and not data.endswith(b"0\r\n\r\n")
    assert timed_get(server.port, "/after-cut") is not None


def test_exception_in_close_after_a_complete_body(server):
    before = closes(server.marks, "raise-in-close")
    with connect(server.port) as sock:
        sock.sendall(request("GET", "/raise-in-close"))
        resp = read_response(sock)
        sock.sendall(request("GET", "/next"))
        after = read_response(sock)
    assert (resp.status, resp.body) == (200, b"done")
    assert after.body == b"/next"
    assert closes(server.marks, "raise-in-close") == before + 1
    wait_until(lambda: "boom in close()" in server.log_text(), 5, what="the close() error logged")


def test_client_leaving_mid_response_closes_the_iterable_logs_no_error_and_spares_others(server, figure):
    size = 32 * 1024 * 1024
    log_start = len(server.log_text())
    before = closes(server.marks, "big")
    other: dict = {}

    def download():  # a concurrent client reading a whole streamed body
        with connect(server.port, timeout=20) as sock:
            sock.sendall(request("GET", f"/big?n={size}"))
            other["resp"] = read_response(sock)

    thread = threading.Thread(target=download)
    thread.start()
    for _ in range(5):
        with connect(server.port) as sock:
            sock.sendall(request("GET", "/big?n=104857600"))
            received = b""
            while len(received) < 300_000:
                chunk = sock.recv(65536)
                assert chunk, received[:200]
                received += chunk
    thread.join(30)
    assert other["resp"].status == 200 and len(other["resp"].body) == size
    wait_until(lambda: closes(server.marks, "big") >= before + 6, 10, what="close() of every iterable")
    log = server.log_text()[log_start:]
    errors = [line for line in log.splitlines() if "[ERROR]" in line or "Traceback" in line]
    figure("client disconnects mid-response (x5)", "error lines logged", len(errors), "", "0")
    assert not errors, log[-3000:]


def test_hung_app_threads_leave_the_others_and_the_loop_serving(tmp_path, figure):
    threads = 4
    with hardening_server(tmp_path, "--graceful-timeout", "1", "--env", "ASYNCWORKER_HEADER_TIMEOUT=1",
                          threads=threads) as server:
        hung = [connect(server.port) for _ in range(threads - 1)]
        try:
            for sock in hung:
                sock.sendall(request("GET", "/hang"))
            wait_until(lambda: started(tmp_path) == threads - 1, 5, what="hung requests in the app")
            latencies = [timed_get(server.port, f"/other{i}") for i in range(20)]
            assert None not in latencies, latencies
            figure("3 of 4 app threads hung", "other requests answered", len(latencies), "of 20", "all")
            if not is_asyncworker():
                return  # the loop checks below are about the event loop
            # The last thread hangs too: the loop still answers what needs no app thread.
            last = connect(server.port)
            hung.append(last)
            last.sendall(request("GET", "/hang"))
            wait_until(lambda: started(tmp_path) == threads, 5, what="every app thread hung")
            t0 = time.monotonic()
            with connect(server.port) as bad:
                bad.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
                data, closed = read_until_eof(bad, 5)
            figure("all 4 app threads hung", "400 for a bad request in", (time.monotonic() - t0) * 1000, "ms",
                   "answered by the loop")
            assert [r.status for r in parse_responses(data)] == [400] and closed
            with connect(server.port) as half:  # the header timer still runs on the loop
                half.sendall(b"GET /half HTTP/1.1\r\n")
                data, closed = read_until_eof(half, 5)
            assert closed and [r.status for r in parse_responses(data)] == [408]
        finally:
            for sock in hung:
                sock.close()


def test_app_calling_os_exit_gets_the_worker_respawned(tmp_path, figure):
    with hardening_server(tmp_path) as server:
        first = the_worker(server)
        with connect(server.port) as sock:
            sock.sendall(request("GET", "/exit"))
            data, closed = read_until_eof(sock, 10)
        assert (data, closed) == (b"", True)
        t0 = time.monotonic()
        wait_until(lambda: server.worker_pids() not in ([], [first]), 20, what="a new worker")
        body = wait_until(lambda: timed_get(server.port, "/after-exit") is not None, 20, interval=0.1,
                          what="a request served by the new worker")
        figure("app calls os._exit", "next request served after", time.monotonic() - t0, "s", "served")
        assert body
        assert server.proc.poll() is None, "the master must survive"
        server.signal(signal.SIGTERM)
