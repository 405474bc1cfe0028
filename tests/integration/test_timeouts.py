"""AsyncWorker bounds on the receiving side, each crossed by a real client over loopback:
head and body timeouts, keep-alive, slow clients with one app thread, worker_connections,
pipelining, 100-continue and the streamed (READPAYLOAD=0) request body."""

import hashlib
import os
import threading
import time

import pytest

from helpers import connect, parse_responses, read_response, read_until_eof, wait_until
from worker_support import get, hits, nothing_within, post_head, timed_eof, worker_server


def _is_408_or_nothing(data: bytes) -> bool:
    return data == b"" or [r.status for r in parse_responses(data)] == [408]


# --- 1. head and body timeouts -----------------------------------------------

@pytest.fixture(scope="module")
def timeouts_server(tmp_path_factory):
    marks = tmp_path_factory.mktemp("timeouts")
    with worker_server(marks, "--env", "ASYNCWORKER_HEADER_TIMEOUT=1",
                       "--env", "ASYNCWORKER_BODY_TIMEOUT=1") as server:
        server.marks = marks
        yield server


def test_half_a_head_gets_408_and_close_after_header_timeout(timeouts_server):
    with connect(timeouts_server.port) as sock:
        sock.sendall(b"GET /half HTTP/1.1\r\nHost: te")
        data, closed, elapsed = timed_eof(sock, 5)
    assert closed, data
    assert 0.9 <= elapsed < 3, elapsed
    assert _is_408_or_nothing(data), data
    assert "/half" not in hits(timeouts_server.marks)


def test_head_trickled_past_header_timeout_is_cut(timeouts_server):
    """The head timeout runs from the head's first byte: bytes that keep coming do not extend it."""
    head = get("/trickled", "X-Pad: " + "p" * 200)
    with connect(timeouts_server.port) as sock:
        t0 = time.monotonic()
        closed = False
        for i in range(len(head) - 1):  # never the last byte
            try:
                sock.sendall(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if not nothing_within(sock, 0.05):  # paces the trickle and sees the server's answer
                break
            if time.monotonic() - t0 > 5:
                break
        data, eof = read_until_eof(sock, 5)
        elapsed = time.monotonic() - t0
    assert closed or eof, data
    assert 0.9 <= elapsed < 3, elapsed
    assert _is_408_or_nothing(data), data


def test_whole_head_in_time_is_served(timeouts_server):
    request = get("/intime")
    with connect(timeouts_server.port) as sock:
        sock.sendall(request[:10])
        assert nothing_within(sock, 0.5)  # half the header timeout passes with half a head
        sock.sendall(request[10:])
        resp = read_response(sock)
    assert (resp.status, resp.body) == (200, b"/intime")


def test_stalled_body_gets_408_and_close_and_the_app_never_sees_it(timeouts_server):
    with connect(timeouts_server.port) as sock:
        sock.sendall(post_head("/echo", 100) + b"0123456789")
        data, closed, elapsed = timed_eof(sock, 5)
    assert closed, data
    assert 0.9 <= elapsed < 3, elapsed
    assert [r.status for r in parse_responses(data)] == [408], data
    assert "/echo" not in hits(timeouts_server.marks)


# --- 2. keep-alive -----------------------------------------------------------

def test_idle_keepalive_connection_closed_after_keepalive(tmp_path):
    with worker_server(tmp_path, "--keep-alive", "1") as server, connect(server.port) as sock:
        sock.sendall(get("/first"))
        resp = read_response(sock)
        assert resp.status == 200 and (resp.header("connection") or "").lower() != "close"
        data, closed, elapsed = timed_eof(sock, 5)
    assert (data, closed) == (b"", True)
    assert 0.9 <= elapsed < 3, elapsed


def test_keepalive_0_answers_with_connection_close(tmp_path):
    with worker_server(tmp_path, "--keep-alive", "0") as server, connect(server.port) as sock:
        sock.sendall(get("/only") + get("/never"))
        data, closed, elapsed = timed_eof(sock, 5)
    responses = parse_responses(data)
    assert [(r.status, r.body) for r in responses] == [(200, b"/only")]
    assert responses[0].header("connection").lower() == "close"
    assert closed and elapsed < 1, elapsed
    assert hits(tmp_path) == ["/only"]


# --- 3. slow clients do not hold the one app thread ----------------------------

def test_trickling_clients_do_not_delay_a_normal_request(tmp_path):
    n_clients, interval = 50, 0.05
    head = get("/slowloris", "X-Pad: " + "p" * 300)
    stop, rounds = threading.Event(), []
    with worker_server(tmp_path, threads=1) as server:
        socks = [connect(server.port) for _ in range(n_clients)]

        def trickle():
            for i in range(len(head) - 1):
                for s in socks:
                    s.sendall(head[i:i + 1])
                rounds.append(i)
                if stop.wait(interval):
                    return

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            wait_until(lambda: len(rounds) >= 5, 5, what="trickling under way")
            durations = []
            for i in range(5):
                with connect(server.port, timeout=5) as sock:
                    t0 = time.monotonic()
                    sock.sendall(get(f"/normal{i}"))
                    resp = read_response(sock)
                    durations.append(time.monotonic() - t0)
                assert (resp.status, resp.body) == (200, f"/normal{i}".encode())
            assert trickler.is_alive() and len(rounds) < len(head) - 1  # still trickling
        finally:
            stop.set()
            trickler.join(5)
            for s in socks:
                s.close()
    assert max(durations) < 0.5, durations
    assert "/slowloris" not in hits(tmp_path)


# --- 7. worker_connections -----------------------------------------------------

def test_worker_connections_makes_room_by_closing_the_oldest_idle_connection(tmp_path):
    """At the cap, a waiting client is served: the oldest idle keep-alive connection is
    closed to make room for it, the younger one stays open (README, worker_connections)."""
    with worker_server(tmp_path, "--worker-connections", "2", "--keep-alive", "30") as server:
        held = []
        try:
            for name in ("/a", "/b"):
                sock = connect(server.port)
                held.append(sock)
                sock.sendall(get(name))
                assert read_response(sock).status == 200
                time.sleep(0.05)  # /a is the older idle connection
            with connect(server.port) as third:
                third.sendall(get("/third"))
                third.settimeout(5)
                resp = read_response(third)
            assert (resp.status, resp.body) == (200, b"/third")
            oldest, younger = held
            assert read_until_eof(oldest, 2) == (b"", True)  # closed to make room
            assert nothing_within(younger, 0.3)  # still open
        finally:
            for sock in held:
                sock.close()


def test_worker_connections_holds_a_third_connection_while_both_are_busy(tmp_path):
    """With no idle connection to close, the cap holds: the third client waits until a busy
    one has its answer, which ends that connection (Connection: close)."""
    with worker_server(tmp_path, "--worker-connections", "2", "--keep-alive", "30", threads=4) as server:
        busy = [connect(server.port) for _ in range(2)]
        try:
            for sock in busy:
                sock.sendall(get("/slow?s=1"))
            wait_until(lambda: hits(tmp_path).count("/slow") == 2, 5, what="both requests in the app")
            with connect(server.port) as third:
                third.sendall(get("/third"))
                assert nothing_within(third, 0.5), "answered past worker_connections"
                answers = [read_response(sock) for sock in busy]
                third.settimeout(5)
                resp = read_response(third)
            assert (resp.status, resp.body) == (200, b"/third")
            assert all(a.status == 200 and a.header("Connection") == "close" for a in answers)
        finally:
            for sock in busy:
                sock.close()


# --- 8. pipelining -------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    marks = tmp_path_factory.mktemp("plain")
    with worker_server(marks) as server:
        server.marks = marks
        yield server


def test_100_pipelined_requests_answered_in_order(plain_server):
    paths = [f"/p/{i}" for i in range(100)]
    with connect(plain_server.port) as sock:
        sock.sendall(b"".join(get(p) for p in paths))
        bodies = [read_response(sock).body for _ in paths]
        assert nothing_within(sock, 0.2)  # nothing more, and the connection stays open
    assert bodies == [p.encode() for p in paths]


def test_malformed_request_in_a_pipeline_gets_400_and_close(plain_server):
    good = [get(f"/good{i}") for i in range(3)]
    bad = b"GET /bad HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"
    after = [get(f"/after{i}") for i in range(2)]
    with connect(plain_server.port) as sock:
        sock.sendall(b"".join(good) + bad + b"".join(after))
        data, closed = read_until_eof(sock, 5)
    responses = parse_responses(data)
    assert [r.status for r in responses] == [200, 200, 200, 400], data
    assert [r.body for r in responses[:3]] == [b"/good0", b"/good1", b"/good2"]
    assert closed
    seen = hits(plain_server.marks)
    assert {"/good0", "/good1", "/good2"} <= set(seen)
    assert not {"/bad", "/after0", "/after1"} & set(seen), seen


# --- 11. 100-continue ----------------------------------------------------------

def test_expect_100_continue_before_the_final_response(plain_server):
    with connect(plain_server.port) as sock:
        sock.sendall(post_head("/echo", 5, "Expect: 100-continue"))
        interim = read_response(sock)
        assert (interim.status, interim.body) == (100, b"")
        sock.sendall(b"hello")
        resp = read_response(sock)
    assert (resp.status, resp.body) == (200, b"hello")


def test_expect_100_continue_over_max_body_size_gets_413_only(tmp_path):
    with worker_server(tmp_path, "--env", "ASYNCWORKER_MAX_BODY_SIZE=10") as server:
        with connect(server.port) as sock:
            sock.sendall(post_head("/echo", 1000, "Expect: 100-continue"))
            data, closed = read_until_eof(sock, 5)
        assert [r.status for r in parse_responses(data)] == [413], data
        assert b"100 Continue" not in data
        assert closed
        with connect(server.port) as sock:  # under the cap: 100 Continue, then the app's answer
            sock.sendall(post_head("/echo", 10, "Expect: 100-continue"))
            assert read_response(sock).status == 100
            sock.sendall(b"0123456789")
            resp = read_response(sock)
        assert (resp.status, resp.body) == (200, b"0123456789")
    assert hits(tmp_path) == ["/echo"]


def test_early_413_reaches_a_client_that_sends_its_whole_body_first(tmp_path):
    """Like most HTTP clients, this one sends the whole body before reading. The
    server answers 413 from the head; had it closed at once, the rest of the upload
    would hit a reset and the client would never read the 413."""
    body = b"x" * (8 * 1024 * 1024)
    with worker_server(tmp_path, "--env", "ASYNCWORKER_MAX_BODY_SIZE=1024") as server:
        with connect(server.port) as sock:
            sock.sendall(post_head("/echo", len(body)) + body)
            data, closed = read_until_eof(sock, 10)
    assert [r.status for r in parse_responses(data)] == [413], data
    assert closed
    assert hits(tmp_path) == []


def test_lingering_after_an_early_response_is_bounded(tmp_path):
    """A client that keeps sending after its 413 is cut off after LINGER_LIMIT bytes."""
    from server.protocol.server import LINGER_LIMIT

    with worker_server(tmp_path, "--env", "ASYNCWORKER_MAX_BODY_SIZE=1024") as server:
        with connect(server.port) as sock:
            sock.sendall(post_head("/echo", 4 * LINGER_LIMIT))
            sent, error = 0, None
            try:
                while sent < 4 * LINGER_LIMIT:
                    sent += sock.send(b"x" * 65536)
            except OSError as exc:
                error = exc
        assert error is not None, "the server drained the whole upload"
        assert LINGER_LIMIT <= sent < 2 * LINGER_LIMIT, sent


# --- 12. streamed request bodies (READPAYLOAD=0) -------------------------------

@pytest.fixture(scope="module")
def streaming_server(tmp_path_factory):
    marks = tmp_path_factory.mktemp("streaming")
    with worker_server(marks, "--env", "ASYNCWORKER_READPAYLOAD=0") as server:
        server.marks = marks
        yield server


def _sha_request(server, head: bytes, body_parts) -> bytes:
    """Send the head and the first part; in streaming mode the app starts before the rest."""
    before = hits(server.marks).count("/sha")
    with connect(server.port, timeout=10) as sock:
        sock.sendall(head + body_parts[0])
        wait_until(lambda: hits(server.marks).count("/sha") > before, 5,
                   what="the app called before the body is complete")
        for part in body_parts[1:]:
            sock.sendall(part)
        resp = read_response(sock)
    assert resp.status == 200, resp
    return resp.body


def test_streamed_upload_with_content_length_is_exact(streaming_server):
    body = os.urandom(5 * 1024 * 1024)
    parts = [body[i:i + 100_000] for i in range(0, len(body), 100_000)]
    got = _sha_request(streaming_server, post_head("/sha", len(body)), parts)
    assert got == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_streamed_chunked_upload_is_exact(streaming_server):
    body = os.urandom(3 * 1024 * 1024 + 12345)
    sizes = [1, 100, 65535, 65536, 65537, 300_000]
    chunks, pos, i = [], 0, 0
    while pos < len(body):
        piece = body[pos:pos + sizes[i % len(sizes)]]
        chunks.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        pos, i = pos + len(piece), i + 1
    chunks.append(b"0\r\n\r\n")
    head = get("/sha", "Transfer-Encoding: chunked").replace(b"GET ", b"POST ", 1)
    got = _sha_request(streaming_server, head, chunks)
    assert got == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_streamed_upload_with_expect_gets_100_on_first_read(streaming_server):
    with connect(streaming_server.port) as sock:
        sock.sendall(post_head("/sha", 3, "Expect: 100-continue"))
        assert read_response(sock).status == 100
        sock.sendall(b"abc")
        resp = read_response(sock)
    assert resp.body == f"3 {hashlib.sha256(b'abc').hexdigest()}".encode()



def test_a_streamed_body_that_times_out_in_the_app_ends_quietly(tmp_path):
    """The body timeout closes the connection while the app reads ``wsgi.input``: the app's
    read raises, and the request ends as one whose client left (a debug line), without the
    server trying to write an error page on the half-closed connection (that raised in the
    loop); the next client is served."""
    with worker_server(tmp_path, "--env", "ASYNCWORKER_READPAYLOAD=0", "--env", "ASYNCWORKER_BODY_TIMEOUT=1",
                       "--log-level", "debug") as server:
        with connect(server.port, timeout=10) as sock:
            sock.sendall(post_head("/sha", 1000) + b"x" * 10)
            wait_until(lambda: "/sha" in hits(tmp_path), 5, what="the app reading the body")
            data, closed = read_until_eof(sock, timeout=8)
        assert closed and b"HTTP/1.1 2" not in data
        wait_until(lambda: "Request POST /sha ended after the client disconnected" in server.log_text(), 5,
                   what="the app's end logged")
        with connect(server.port) as again:
            again.sendall(get("/count"))
            assert read_response(again).status == 200
        log = server.log_text()
    assert "Traceback" not in log and "[ERROR]" not in log, log[-3000:]
