"""Slow readers never hold an app thread: a WSGI response goes to a spool the loop drains as
the client reads (memory, then a temporary file), and a ``wsgi.file_wrapper`` file to the
loop's file sender, so the app thread is free as soon as the app has produced its body.

With ``--threads 2``, eight clients read 16 MiB each (four a generator body, four a file)
at 32 KiB/s for ``SLOW_SECONDS`` (then the rest at full speed, checked byte for byte): a
fresh client's ``GET /ping`` is answered as fast as ever meanwhile, and the worker's memory
stays bounded. Past the per-response cap or the worker's budget, the app thread waits on
the client again; a client that goes away frees its spool; ``close()`` of the iterable is
called once the app is done, before the client has read the body; and a client that stops
reading is still closed by the minimum response rate.
"""

import hashlib
import socket
import struct
import threading
import time

import pytest

from hardening_support import (MiB, RssSampler, is_asyncworker, open_fds_under, percentile, request, rss, scaled,
                               the_worker, timed_get)
from helpers import Gunicorn, connect, parse_responses, wait_until
from slow_reader_apps import pattern, pattern_sha256

APP = "slow_reader_apps:app"
THREADS = 2
BODY = 16 * MiB
RATE = 32 * 1024  # bytes/s each slow reader takes
SLOW_SECONDS = scaled(12.0, 60.0)
PINGS = 60
P99_BOUND = 0.1  # seconds
RSS_BOUND = 64 * MiB
GRACE = 5.0  # ASYNCWORKER_RATE_GRACE's default
# For the tests whose clients read nothing for a few seconds on purpose (the minimum rate
# would close them after the grace: see test_a_client_that_stops_reading_a_spooled_response_is_still_closed).
NO_RATE_YET = {"ASYNCWORKER_RATE_GRACE": "60"}

asyncworker_only = pytest.mark.skipif(not is_asyncworker(), reason="the response spool is this worker's")


def slow_reader_server(tmp_path, *args: str, threads: int = THREADS, env: dict | None = None) -> Gunicorn:
    """The app, with gunicorn's defaults but ``--threads`` and its spool files in ``tmp_path/spool``."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    config = tmp_path / "spool_conf.py"  # tmp_upload_dir has no command-line flag
    config.write_text(f"tmp_upload_dir = {str(spool)!r}\n")
    env = {"WORKER_APPS_DIR": str(tmp_path), **(env or {})}
    server = Gunicorn(APP, "-c", str(config), *args, threads=threads, env=env)
    server.spool = spool
    return server


def pattern_file(tmp_path, n: int = BODY):
    path = tmp_path / "files" / "pattern.bin"
    path.parent.mkdir(exist_ok=True)
    with open(path, "wb") as f:
        for data in pattern(n):
            f.write(data)
    return path


def open_reader(port: int, target: str) -> socket.socket:
    sock = connect(port, timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # the server's writes pause soon
    sock.sendall(request("GET", target, "Connection: close"))
    return sock


def read_slowly(sock: socket.socket, rate: int, seconds: float, into: bytearray) -> None:
    """Read for ``seconds`` at about ``rate`` bytes/s into ``into``."""
    t0 = time.monotonic()
    base = len(into)
    while (elapsed := time.monotonic() - t0) < seconds:
        allowed = int(rate * elapsed) - (len(into) - base)
        if allowed <= 0:
            time.sleep(0.02)
            continue
        chunk = sock.recv(min(allowed, 65536))
        if not chunk:
            return
        into += chunk


def read_rest(sock: socket.socket, into: bytearray) -> None:
    while chunk := sock.recv(1 << 20):
        into += chunk


def body_of(raw: bytes) -> bytes:
    responses = parse_responses(raw)
    assert len(responses) == 1 and responses[0].status == 200, responses[:1]
    return responses[0].body


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_int(path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def stalled(path, settle: float = 1.5, timeout: float = 30) -> int:
    """The value in ``path`` once it has not moved for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        value = read_int(path)
        if value != last:
            last, since = value, time.monotonic()
        elif time.monotonic() - since >= settle:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{path.name} still moving after {timeout} s: {last}")


def get_text(port: int, path: str) -> str:
    with connect(port, timeout=10) as sock:
        sock.sendall(request("GET", path, "Connection: close"))
        raw = bytearray()
        read_rest(sock, raw)
    return body_of(bytes(raw)).decode()


class SlowReader(threading.Thread):
    """One client: its request, ``SLOW_SECONDS`` at ``RATE``, then the rest at full speed."""

    HEAD_WAIT = 15.0  # seconds for the head (a worker that holds a thread per reader is slow to give it)

    def __init__(self, port: int, target: str):
        super().__init__(daemon=True)
        self.port, self.target = port, target
        self.head = threading.Event()  # the head is in (the app has started), or HEAD_WAIT is over
        self.raw = bytearray()
        self.slow_bytes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open_reader(self.port, self.target) as sock:
                self.read_head(sock)
                read_slowly(sock, RATE, SLOW_SECONDS, self.raw)
                self.slow_bytes = len(self.raw)
                read_rest(sock, self.raw)
        except BaseException as exc:  # noqa: reported by the test
            self.error = exc
        finally:
            self.head.set()

    def read_head(self, sock: socket.socket) -> None:
        sock.settimeout(0.5)
        deadline = time.monotonic() + self.HEAD_WAIT
        while b"\r\n\r\n" not in self.raw and time.monotonic() < deadline:
            try:
                chunk = sock.recv(1024)
            except TimeoutError:
                continue
            assert chunk, bytes(self.raw)
            self.raw += chunk
        sock.settimeout(60)
        self.head.set()


def test_slow_readers_hold_no_app_thread(tmp_path, figure):
    scenario = f"8 clients reading 16 MiB at 32 KiB/s, --threads {THREADS}"
    path = pattern_file(tmp_path)
    targets = [f"/stream?n={BODY}&name=s{i}" for i in range(2 * THREADS)] + [f"/file?path={path}"] * (2 * THREADS)
    with slow_reader_server(tmp_path) as server:
        worker = the_worker(server)
        with RssSampler(worker) as sampler:
            readers = [SlowReader(server.port, target) for target in targets]
            for reader in readers:
                reader.start()
            for reader in readers:  # every request has its head: the slow phase begins
                reader.head.wait(SlowReader.HEAD_WAIT + 5)
            t0 = time.monotonic()
            latencies = []
            while len(latencies) < PINGS and time.monotonic() - t0 < SLOW_SECONDS - 1:
                latencies.append(timed_get(server.port, "/ping", timeout=2))
                time.sleep(max(0.0, (SLOW_SECONDS - 2) / PINGS - (latencies[-1] or 2)))
            for reader in readers:
                reader.join(120)
    answered = [t for t in latencies if t is not None]
    p99 = percentile(answered, 99) if answered else float("inf")
    figure(scenario, "a fresh client's /ping p99 meanwhile", round(p99 * 1000, 1), "ms", f"< {P99_BOUND * 1000:g}")
    figure(scenario, "pings unanswered in 2 s", len(latencies) - len(answered), "", "0")
    figure(scenario, "worker RSS growth", round(sampler.growth / MiB, 1), "MiB", f"< {RSS_BOUND // MiB}")
    assert not [r.error for r in readers if r.error], [r.error for r in readers if r.error]
    assert all(r.slow_bytes < RATE * SLOW_SECONDS * 1.5 for r in readers), [r.slow_bytes for r in readers]
    expected = pattern_sha256(BODY)
    assert [sha256(body_of(bytes(r.raw))) for r in readers] == [expected] * len(readers)
    assert len(latencies) >= PINGS // 2 and len(answered) == len(latencies), latencies
    assert p99 < P99_BOUND, f"p99 {p99 * 1000:.0f} ms"
    assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"


def spooled(port: int) -> int:
    """The worker's spooled bytes (its budget's gauge)."""
    return int(get_text(port, "/spooled"))


@asyncworker_only
def test_past_the_response_cap_the_app_thread_waits_and_the_body_is_exact(tmp_path, figure):
    cap, body = 4 * MiB, 32 * MiB
    env = {"ASYNCWORKER_RESPONSE_SPOOL_MAX": str(cap), "ASYNCWORKER_RESPONSE_SPOOL_MEMORY": str(256 * 1024),
           **NO_RATE_YET}
    with slow_reader_server(tmp_path, env=env) as server:
        worker = the_worker(server)
        with open_reader(server.port, f"/stream?n={body}&name=capped&chunked=1") as sock:
            produced = stalled(tmp_path / "produced-capped")  # the client reads nothing yet
            held = spooled(server.port)
            files = open_fds_under(worker, server.spool)
            raw = bytearray()
            read_rest(sock, raw)
        wait_until(lambda: spooled(server.port) == 0, 10, what="the spool given back")
        wait_until(lambda: not open_fds_under(worker, server.spool), 10, what="the spool file closed")
    figure("a 32 MiB response, its client not reading, cap 4 MiB", "produced before the app waited",
           round(produced / MiB, 1), "MiB", "4 MiB + the socket's buffers")
    assert cap <= produced < body // 2, produced
    assert cap - 64 * 1024 < held <= cap, held  # full: the next 64 KiB piece would cross the cap
    assert len(files) == 1, files  # past 256 KiB the spool is a temporary file
    assert sha256(body_of(bytes(raw))) == pattern_sha256(body)
    assert not list(server.spool.iterdir())


@asyncworker_only
def test_past_the_worker_budget_app_threads_wait_and_the_bodies_are_exact(tmp_path, figure):
    budget, body = 6 * MiB, 32 * MiB  # each body fits the default 64 MiB cap, not both the budget
    env = {"ASYNCWORKER_RESPONSE_SPOOL_BUDGET": str(budget), **NO_RATE_YET}
    with slow_reader_server(tmp_path, threads=3, env=env) as server:
        socks = [open_reader(server.port, f"/stream?n={body}&name=b{i}") for i in range(2)]
        produced = [stalled(tmp_path / f"produced-b{i}") for i in range(2)]
        held = spooled(server.port)
        raws = [bytearray(), bytearray()]
        for sock, raw in zip(socks, raws):
            with sock:
                read_rest(sock, raw)
        wait_until(lambda: spooled(server.port) == 0, 10, what="the budget given back")
    figure("two 32 MiB responses, clients not reading, budget 6 MiB", "spooled while they wait",
           round(held / MiB, 1), "MiB", "<= 6 MiB + 2 x 320 KiB")
    assert all(p < body // 2 for p in produced), produced  # both threads wait
    assert budget // 2 < held <= budget + 2 * 320 * 1024, held
    assert [sha256(body_of(bytes(raw))) for raw in raws] == [pattern_sha256(body)] * 2


@asyncworker_only
@pytest.mark.parametrize("loop", ["auto", "asyncio"])  # uvloop: file blocks read off the loop; asyncio: sendfile
def test_a_client_gone_mid_spool_frees_it(tmp_path, loop):
    path = pattern_file(tmp_path)
    env = {"ASYNCWORKER_RESPONSE_SPOOL_MEMORY": str(256 * 1024), "ASYNCWORKER_LOOP": loop}
    with slow_reader_server(tmp_path, env=env) as server:
        worker = the_worker(server)
        for target, closed, held_in in ((f"/stream?n={BODY}", "closed-stream", server.spool),
                                        (f"/file?path={path}", "closed-file", path.parent)):
            with open_reader(server.port, target) as sock:
                wait_until((tmp_path / closed).exists, 10, what="the app done")
                wait_until(lambda: open_fds_under(worker, held_in), 10, what="the loop's file")
                assert spooled(server.port) > 0 if closed == "closed-stream" else True
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
            wait_until(lambda: not open_fds_under(worker, held_in), 10, what="the loop's file closed")
            assert spooled(server.port) == 0
            (tmp_path / closed).unlink()
        assert get_text(server.port, "/ping") == "pong"
        log = server.log_text()
    assert not list(server.spool.iterdir())
    assert "Traceback" not in log and "[ERROR]" not in log, log[-2000:]


@pytest.mark.parametrize("target, closed", [(f"/stream?n={BODY}&name=early", "closed-early"),
                                            ("/file?path={path}", "closed-file")])
def test_close_comes_when_the_app_is_done_and_the_log_record_when_the_client_is(tmp_path, target, closed, figure):
    kind = "generator" if closed == "closed-early" else "wsgi.file_wrapper"
    target = target.format(path=pattern_file(tmp_path))
    with slow_reader_server(tmp_path, "--access-logfile", "-") as server:
        with open_reader(server.port, target) as sock:
            raw = bytearray()
            read_slowly(sock, RATE, 1.0, raw)
            try:  # (the client reads nothing meanwhile)
                wait_until((tmp_path / closed).exists, 10, what="close() of the iterable")
                read_before_close = len(raw)
            except TimeoutError:
                read_before_close = None
            logged_early = f'"GET {target} HTTP/1.1" 200' in server.log_text()
            read_rest(sock, raw)
        figure(f"a 16 MiB {kind} body read slowly", "read by the client when close() came",
               float("inf") if read_before_close is None else round(read_before_close / MiB, 2), "MiB", "< 4")
        wait_until(lambda: f'"GET {target} HTTP/1.1" 200 {BODY} ' in server.log_text(), 10,
                   what="the access log record with the bytes sent")
    assert read_before_close is not None and read_before_close < BODY // 4, read_before_close
    assert not logged_early, "the response was logged before the client had read it"
    assert sha256(body_of(bytes(raw))) == pattern_sha256(BODY)


@asyncworker_only
def test_a_client_that_stops_reading_a_spooled_response_is_still_closed(tmp_path, figure):
    with slow_reader_server(tmp_path, env={"ASYNCWORKER_RESPONSE_SPOOL_MEMORY": str(256 * 1024)}) as server:
        worker = the_worker(server)
        with connect(server.port, timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            t0 = time.monotonic()
            sock.sendall(request("GET", f"/stream?n={BODY}&name=stuck"))  # and never read
            wait_until((tmp_path / "closed-stuck").exists, 10, what="the app done")
            app_done = time.monotonic() - t0
            wait_until(lambda: spooled(server.port) == 0, 30, interval=0.1, what="the spool dropped")
            closed_after = time.monotonic() - t0
            files = open_fds_under(worker, server.spool)
        log = server.log_text()
    figure("a spooled 16 MiB response never read", "closed after (s)", round(closed_after, 1), "",
           f">= {GRACE:g} s grace, the app done before")
    assert app_done < GRACE <= closed_after < GRACE + 10, (app_done, closed_after)
    assert "reads the response slower than 240 bytes/s" in log
    assert not files, files


@asyncworker_only
def test_an_app_failing_mid_spool_cuts_the_response_after_what_it_produced(tmp_path):
    produced, announced = 8 * MiB, BODY
    env = {"ASYNCWORKER_RESPONSE_SPOOL_MEMORY": str(256 * 1024), **NO_RATE_YET}
    with slow_reader_server(tmp_path, env=env) as server:
        worker = the_worker(server)
        with open_reader(server.port, f"/stream?n={announced}&name=failing&fail_at={produced}") as sock:
            wait_until((tmp_path / "closed-failing").exists, 10, what="the app done")
            wait_until(lambda: "boom after" in server.log_text(), 10, what="the app's error logged")
            assert spooled(server.port) > 0  # the client has read nothing yet
            raw = bytearray()
            read_rest(sock, raw)  # then the connection is closed
        wait_until(lambda: spooled(server.port) == 0, 10, what="the spool given back")
        wait_until(lambda: not open_fds_under(worker, server.spool), 10, what="the spool file closed")
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and f"Content-Length: {announced}".encode() in head
    assert sha256(body) == pattern_sha256(produced)  # all it produced, in order, then the cut


@asyncworker_only
@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_a_file_cut_short_while_the_loop_sends_it_cuts_the_response(tmp_path, loop):
    path, kept = pattern_file(tmp_path), 8 * MiB
    with slow_reader_server(tmp_path, env={"ASYNCWORKER_LOOP": loop}) as server:
        with open_reader(server.port, f"/file?path={path}&truncate={kept}") as sock:
            wait_until((tmp_path / "closed-file").exists, 10, what="the app done (the file truncated)")
            raw = bytearray()
            read_rest(sock, raw)  # until the server closes
        assert get_text(server.port, "/ping") == "pong"
        log = server.log_text()
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    assert f"Content-Length: {BODY}".encode() in head
    assert len(body) <= kept and sha256(body) == sha256(b"".join(pattern(BODY))[:len(body)])
    assert "cut: " in log and "Traceback" not in log


@asyncworker_only
def test_a_pipelined_request_is_answered_after_the_spooled_response_in_order(tmp_path):
    with slow_reader_server(tmp_path, "--access-logfile", "-") as server:
        with connect(server.port, timeout=60) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(request("GET", f"/stream?n={BODY}&name=first") + request("GET", "/ping", "Connection: close"))
            wait_until((tmp_path / "closed-first").exists, 10, what="the first app done")
            time.sleep(0.5)
            ping_logged_early = '"GET /ping HTTP/1.1"' in server.log_text()
            raw = bytearray()
            read_rest(sock, raw)
    first, second = parse_responses(bytes(raw))
    assert sha256(first.body) == pattern_sha256(BODY) and second.body == b"pong"
    assert not ping_logged_early, "the next request was answered before the spooled response was read"
