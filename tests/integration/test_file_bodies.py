"""Files as response bodies on uvloop, which has no ``loop.sendfile``: ``os.sendfile`` on the
connection's socket from the loop (no block read in a thread, no copy through Python), with
the minimum response rate watching a client that does not read, and nothing left open;
with --no-sendfile, blocks read on the loop from the page cache, in a thread from the disk."""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import Gunicorn, connect, read_response, wait_until, write_uncached
from server.protocol.files import FILE_BLOCK, SENDFILE_STEP, UNSENT_LIMIT

SIZE = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("files") / "big.bin"
    block = hashlib.shake_256(b"file bodies").digest(1024 * 1024)
    with open(path, "wb") as f:
        for i in range(SIZE // len(block)):
            f.write(i.to_bytes(4, "big") + block[4:])
    return path


def download(port: int, target: str) -> tuple[int, dict, bytes]:
    with connect(port, timeout=30) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        response = read_response(sock)
    return response.status, response, response.body


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def socket_fds(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count


def tracer_pid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    return 0


def read_size(strace_line: str) -> int:
    """What a traced read returned (-1 for an error)."""
    result = strace_line.rsplit("= ", 1)[-1].split()[0]
    return int(result) if result.lstrip("-").isdigit() else -1


def download_counting_threads(path: Path, sendfile: bool) -> tuple[int, int, bytes]:
    """A fresh ASGI worker's thread count before and after it sends ``path``, and the body."""
    args = () if sendfile else ("--no-sendfile",)
    with Gunicorn("file_apps:asgi_app", *args) as srv:
        pid = srv.worker_pids()[0]
        before = thread_count(pid)
        status, _, body = download(srv.port, f"/file?path={path}")
        after = thread_count(pid)
    assert status == 200, status
    return before, after, body


@pytest.mark.parametrize("sendfile", [True, False])
def test_a_file_not_in_the_page_cache_is_read_in_a_thread_not_on_the_loop(big_file, sendfile, tmp_path):
    """An ASGI worker has no thread but the loop's. The blocks of a file the page cache does
    not hold are read in the loop's default executor (a thread starts), by sendfile or not:
    the loop does not wait on the disk."""
    cold = tmp_path / "cold.bin"
    write_uncached(cold, big_file.read_bytes())
    before, after, body = download_counting_threads(cold, sendfile)
    assert body == big_file.read_bytes()
    assert after > before, (before, after)


# A cached page can read as a miss to a read that may not wait (preadv RWF_NOWAIT) while the
# kernel has it locked (moving it, say): that block then goes by a thread, never wrongly.
ATTEMPTS = 4


@pytest.mark.parametrize("sendfile", [True, False])
def test_a_cached_file_is_sent_from_the_loop_without_a_thread(big_file, sendfile):
    """By sendfile or by blocks read on the loop: no executor thread, no hand-off per block."""
    threads = []
    for _ in range(ATTEMPTS):
        big_file.read_bytes()  # (in the page cache now)
        before, after, body = download_counting_threads(big_file, sendfile)
        assert body == big_file.read_bytes()
        threads.append((before, after))
        if after == before:
            break
    assert threads[-1][0] == threads[-1][1], threads


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (Debian: apt-get install strace)")
@pytest.mark.parametrize("sendfile", [True, False])
def test_a_cached_file_goes_by_sendfile_unless_gunicorn_says_no(big_file, sendfile, tmp_path):
    """The worker's system calls, traced: ``sendfile`` and only one-byte page-cache probes
    (``preadv2`` of 1 byte), or, with --no-sendfile, no ``sendfile`` and reads of whole blocks."""
    big_file.read_bytes()
    args = () if sendfile else ("--no-sendfile",)
    trace = tmp_path / "trace.txt"
    with Gunicorn("file_apps:asgi_app", *args) as srv:
        pid = srv.worker_pids()[0]
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=sendfile,preadv2", "-o", str(trace),
                                   "-p", str(pid)], stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: tracer_pid(pid) != 0, 10, what="strace attached")
            status, _, body = download(srv.port, f"/file?path={big_file}")
        finally:
            tracer.terminate()
            tracer.wait(10)
    assert status == 200 and body == big_file.read_bytes()
    lines = trace.read_text().splitlines()
    sendfiles = [line for line in lines if "sendfile(" in line]
    # (a probe answers 1 byte, or -1 EAGAIN for a page the kernel holds locked a moment)
    block_reads = [line for line in lines if "preadv2(" in line and read_size(line) > 1]
    if sendfile:
        assert sendfiles and not block_reads, lines[:20]
        # Each span asked of the cache at once (SENDFILE_STEP) is probed every FILE_BLOCK and
        # at its end, once, however many calls send it (at most UNSENT_LIMIT queued each); a
        # page the kernel holds locked a moment cuts a span short: one span more is allowed.
        probes = [line for line in lines if "preadv2(" in line]
        spans = -(-SIZE // SENDFILE_STEP) + 1
        assert len(probes) <= spans * (SENDFILE_STEP // FILE_BLOCK + 1), (len(probes), len(sendfiles))
    else:
        assert block_reads and not sendfiles, lines[:20]


@pytest.mark.parametrize("sized", ["1", "0"])
def test_a_file_wrapper_body_is_exact_with_its_length(big_file, sized):
    """With or without the app's Content-Length: the file's length is known, so it is sent."""
    with Gunicorn("file_apps:wsgi_app") as srv:
        status, response, body = download(srv.port, f"/file?path={big_file}&sized={sized}")
    assert status == 200 and body == big_file.read_bytes()
    assert response.header("Content-Length") == str(SIZE)


def test_a_client_that_reads_nothing_is_closed_by_the_minimum_rate_and_nothing_stays_open(big_file):
    """The rate averages what the client took since the socket filled (its receive buffer's
    worth, then nothing): 100 KB/s makes the test short; at 240 B/s it takes minutes."""
    env = {"ASYNCWORKER_RATE_GRACE": "2", "ASYNCWORKER_MIN_RESPONSE_RATE": "100000"}
    with Gunicorn("file_apps:asgi_app", env=env) as srv:
        pid = srv.worker_pids()[0]
        before = socket_fds(pid)
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.sendall(f"GET /file?path={big_file} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        started = time.monotonic()
        wait_until(lambda: socket_fds(pid) > before, 5, what="the connection open")
        wait_until(lambda: socket_fds(pid) == before, 15, what="the lagging client closed")
        closed_after = time.monotonic() - started
        sock.close()
        assert "it reads the response slower than" in srv.log_text()
        status, _, body = download(srv.port, f"/file?path={big_file}")  # the worker serves on
    assert 2 <= closed_after < 10, closed_after
    assert status == 200 and len(body) == SIZE


def test_a_client_leaving_mid_file_leaves_nothing_open(big_file):
    with Gunicorn("file_apps:asgi_app") as srv:
        pid = srv.worker_pids()[0]
        before = socket_fds(pid)
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", srv.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
            sock.sendall(f"GET /file?path={big_file} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()  # (a reset)
        wait_until(lambda: socket_fds(pid) == before, 10, what="every connection and duplicate closed")
        status, _, body = download(srv.port, f"/file?path={big_file}")
    assert status == 200 and len(body) == SIZE


def unsent_bytes(port: int, client_port: int) -> int | None:
    """The bytes the worker's side of the connection from ``client_port`` holds not yet sent
    (``ss -i``'s ``notsent``: 0 when it shows none), or None while ``ss`` does not show it."""
    shown = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} and dport = :{client_port} )"],
                           capture_output=True, text=True, timeout=10).stdout
    if not shown.strip():
        return None
    match = re.search(r"\bnotsent:(\d+)", shown)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("app, loop", [("file_apps:wsgi_app", "uvloop"), ("file_apps:asgi_app", "uvloop"),
                                       ("file_apps:asgi_app", "asyncio")])
def test_a_file_by_sendfile_keeps_little_unsent_behind_a_client_that_stops_reading(big_file, app, loop):
    """``UNSENT_LIMIT`` (TCP_NOTSENT_LOWAT): the socket fills to the client's window and what it
    holds in flight, and no more than the limit (and one segment's worth it may pass it by)
    waits behind; without the option one sendfile call queues megabytes. (uvloop: the worker's
    ``os.sendfile``; asyncio: the loop's ``sendfile``.)"""
    if subprocess.run(["ss", "-V"], capture_output=True).returncode != 0:
        pytest.skip("needs ss (iproute2)")
    big_file.read_bytes()
    with Gunicorn(app, env={"ASYNCWORKER_LOOP": loop}) as srv, connect(srv.port, timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET /file?path={big_file} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 "), first[:100]
        received = len(first) - first.index(b"\r\n\r\n") - 4
        client_port = sock.getsockname()[1]
        seen = []

        def filled() -> bool:  # (the unsent queue no longer grows: the worker waits for room)
            seen.append(unsent_bytes(srv.port, client_port) or 0)
            return len(seen) > 10 and seen[-1] > 0 and seen[-1] == seen[-10]

        wait_until(filled, 10, interval=0.05, what="the worker's side of the connection full")
        assert max(seen) <= UNSENT_LIMIT + 64 * 1024, seen
        while received < SIZE:  # (and the whole file still comes)
            data = sock.recv(1 << 20)
            assert data, received
            received += len(data)
    assert received == SIZE


def congestion_of(port: int, client_port: int) -> str:
    """The congestion control of the worker's side of the connection from ``client_port``."""
    shown = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} and dport = :{client_port} )"],
                           capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"\s(\w+) wscale:", shown)
    assert match, shown
    return match.group(1)


@pytest.mark.parametrize("app", ["file_apps:wsgi_app", "file_apps:asgi_app"])
def test_a_file_to_a_client_on_this_host_goes_unpaced(big_file, app, tmp_path):
    """A connection from this host that BBR paces gets Reno for a file longer than
    ``UNSENT_LIMIT``, by sendfile (files.py, ``PACED``); a shorter one leaves it as it was."""
    if subprocess.run(["ss", "-V"], capture_output=True).returncode != 0:
        pytest.skip("needs ss (iproute2)")
    small = tmp_path / "small.bin"
    small.write_bytes(big_file.read_bytes()[:UNSENT_LIMIT])
    with Gunicorn(app, congestion="bbr") as srv, connect(srv.port, timeout=30) as sock:
        client_port = sock.getsockname()[1]
        seen = []
        for path in (small, big_file):
            sock.sendall(f"GET /file?path={path}&sized=1 HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            response = read_response(sock)
            assert response.status == 200 and response.body == path.read_bytes()
            seen.append(congestion_of(srv.port, client_port))
    assert seen == ["bbr", "reno"]
