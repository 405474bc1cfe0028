"""Files as response bodies on uvloop, which has no ``loop.sendfile``: ``os.sendfile`` on the
connection's socket from the loop (no block read in a thread, no copy through Python), with
the minimum response rate watching a client that does not read, and nothing left open;
with --no-sendfile, blocks read on the loop from the page cache, in a thread from the disk."""

import hashlib
import os
import socket
import time
from pathlib import Path

import pytest

from helpers import Gunicorn, connect, drop_from_page_cache, read_response, wait_until

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


@pytest.mark.parametrize("sendfile", [True, False])
def test_a_pathsend_file_goes_by_sendfile_on_uvloop_unless_gunicorn_says_no(big_file, sendfile):
    """An ASGI worker has no thread but the loop's. A file not in the page cache, sent by
    blocks (--no-sendfile), is read in the loop's default executor (a thread starts): the loop
    does not wait on the disk. By sendfile, the kernel reads it: no thread."""
    args = () if sendfile else ("--no-sendfile",)
    with Gunicorn("file_apps:asgi_app", *args) as srv:
        pid = srv.worker_pids()[0]
        before = thread_count(pid)
        fd = os.open(big_file, os.O_RDONLY)
        try:
            drop_from_page_cache(fd)
        finally:
            os.close(fd)
        status, _, body = download(srv.port, f"/file?path={big_file}")
        after = thread_count(pid)
    assert status == 200 and body == big_file.read_bytes()
    assert (after > before) != sendfile, (before, after)


def test_blocks_of_a_cached_file_are_read_on_the_loop_without_a_thread(big_file):
    """With --no-sendfile, blocks the page cache holds are read on the loop (no executor
    thread, no hand-off per block); the body is the file, byte for byte."""
    big_file.read_bytes()  # (in the page cache now)
    with Gunicorn("file_apps:asgi_app", "--no-sendfile") as srv:
        pid = srv.worker_pids()[0]
        before = thread_count(pid)
        status, _, body = download(srv.port, f"/file?path={big_file}")
        after = thread_count(pid)
    assert status == 200 and body == big_file.read_bytes()
    assert after == before, (before, after)


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
