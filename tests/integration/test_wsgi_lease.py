"""A whole WSGI response is written by its app thread through a lease of the socket
(server/protocol/lease.py): the client has it without waiting for the loop, and
everything else about the response stays as when the loop writes it."""

import os
import socket
import threading

import pytest

from helpers import Gunicorn, connect, read_response, wait_until
from lease_apps import PATTERN


@pytest.fixture(scope="module")
def server():
    with Gunicorn("lease_apps:app", "--access-logfile", "-") as srv:
        yield srv


def get(sock, path: str):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return read_response(sock)


def release_loop(fifo: str) -> None:
    with open(fifo, "wb") as f:
        f.write(b"x")


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_whole_response_reaches_the_client_while_the_loop_is_blocked(tmp_path, loop):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    with Gunicorn("lease_apps:app", env={"ASYNCWORKER_LOOP": loop}) as srv:
        with connect(srv.port) as sock:
            sock.settimeout(5)
            sock.sendall(f"GET /loop-blocked?fifo={fifo} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            try:
                resp = read_response(sock)  # (a loop-written response would time out here)
            finally:
                threading.Thread(target=release_loop, args=(fifo,), daemon=True).start()
            assert resp.status == 200 and resp.body == b"written while the loop is blocked"
            # The loop ends that response once free: the connection goes on.
            assert get(sock, "/hello").body == b"hello world"


def test_what_the_socket_does_not_take_is_written_by_the_loop(server):
    size = 32 * 1024 * 1024  # more than a socket's send buffer takes at once
    with connect(server.port, timeout=30) as sock:
        resp = get(sock, f"/big?size={size}")
        assert resp.status == 200 and resp.header("Content-Length") == str(size)
        assert resp.body == PATTERN * (size // len(PATTERN))
        assert get(sock, "/hello").body == b"hello world"


def test_pipelined_responses_stay_in_order(server):
    paths = ["/hello", "/stream", "/big?size=1048576", "/hello", "/stream", "/hello"]
    with connect(server.port, timeout=10) as sock:
        sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in paths))
        bodies = [read_response(sock).body for _ in paths]
    assert bodies == [b"hello world", b"one two", PATTERN * 4096, b"hello world", b"one two", b"hello world"]


def descriptors(pid: int) -> tuple[int, int]:
    """How many descriptors ``pid`` holds, and how many of them are leases: a lease is a
    second descriptor of a connection's socket."""
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:  # (closed meanwhile)
            pass
    sockets = [link for link in links if link.startswith("socket:")]
    return len(links), len(sockets) - len(set(sockets))


def test_a_worker_keeps_one_lease_between_responses_and_none_past_its_connection(server):
    """One descriptor per running app thread, given back to the loop when its response ends
    (which the loop sees after the client may have read it: the counts are waited for). The
    loop keeps the last connection's for its next response, and lets it go as the next
    connection keeps one, or as the connection closes."""
    socks = [connect(server.port) for _ in range(8)]
    try:
        for sock in socks:
            assert get(sock, "/hello").status == 200
        worker = server.worker_pids()[0]
        wait_until(lambda: descriptors(worker)[1] == 1, 5, what="one lease kept, the last connection's")
        before = descriptors(worker)
        for _ in range(25):
            for sock in socks:
                assert get(sock, "/hello").body == b"hello world"
        wait_until(lambda: descriptors(worker) == before, 5, what=f"descriptors back to {before}")
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: descriptors(worker)[1] == 0, 5, what="no lease past the connections")


def test_a_kept_lease_holds_back_no_close():
    """The server closes an idle connection (keep-alive timeout) whose last response kept its
    lease: the client sees the end (a descriptor left on its socket would keep it open)."""
    with Gunicorn("lease_apps:app", "--keep-alive", "1") as srv, connect(srv.port, timeout=10) as sock:
        for _ in range(3):
            assert get(sock, "/hello").body == b"hello world"
        wait_until(lambda: descriptors(srv.worker_pids()[0])[1] == 1, 5, what="the lease kept")
        assert sock.recv(100) == b""


def test_only_an_exchange_dispatched_alone_gets_a_lease(server, tmp_path):
    """Under load the loop writes the answers: a request dispatched while another is
    unanswered gets no lease (no descriptor of its own)."""
    first, second = connect(server.port), connect(server.port)
    try:
        for sock in (first, second):
            assert get(sock, "/hello").status == 200
        worker = server.worker_pids()[0]
        wait_until(lambda: descriptors(worker)[1] == 1, 5, what="the second connection's lease kept")
        idle = len(os.listdir(f"/proc/{worker}/fd"))
        for sock, name in ((first, "a"), (second, "b")):
            sock.sendall(f"GET /hold?dir={tmp_path}&name={name} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            wait_until(lambda: (tmp_path / f"entered-{name}").exists(), 5, what=f"request {name} in the app")
        held = len(os.listdir(f"/proc/{worker}/fd"))
        (tmp_path / "release").touch()
        assert read_response(first).body == b"a" and read_response(second).body == b"b"
        assert held == idle + 1  # the first request's lease only (the kept one is the second connection's)
        # (the first's is kept as it comes back, the second's let go)
        wait_until(lambda: len(os.listdir(f"/proc/{worker}/fd")) == idle, 5, what="one lease kept again")
    finally:
        first.close()
        second.close()


def test_the_access_log_records_a_thread_written_response(server):
    with connect(server.port) as sock:
        assert get(sock, "/hello?logged=lease").status == 200
    wait_until(lambda: '"GET /hello?logged=lease HTTP/1.1" 200 11' in server.log_text(), 5, what="access log line")


def test_a_client_gone_before_the_answer_leaves_the_worker_serving(server):
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /big?size=4194304 HTTP/1.1\r\nHost: t\r\n\r\n")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # a reset, while the response is being written
    with connect(server.port) as other:
        assert get(other, "/hello").body == b"hello world"
