"""New connections on a real worker of each kind, served on their sockets until they need
the loop (workers/accepted.py): however a client's first bytes come (before the accept,
after it, in pieces, never), it is answered or timed out as before."""

import socket
import time

import pytest

from helpers import (TCP_ESTABLISHED, TCP_SYN_RECV, Gunicorn, accept_queue, acknowledged, connect,
                     kept_connections, read_response, read_until_eof, server_side, wait_until)

from server.wsgi.pool import BACKLOG

APPS = {"wsgi": "slow_apps:wsgi_app", "asgi": "slow_apps:app", "native": "slow_apps:native_app"}
CLOSING = b"GET /sleep?s=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
KEPT = b"GET /sleep?s=0 HTTP/1.1\r\nHost: t\r\n\r\n"


def read_by_worker(port: int, sock: socket.socket) -> bool:
    """What ``sock`` sent has reached the worker's side and the worker has read it all."""
    side = server_side(port, sock.getsockname()[1])
    return acknowledged(sock) and side is not None and side[1] == 0


def answered(sock: socket.socket) -> bool:
    data, ended = read_until_eof(sock)
    return ended and data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("kind", APPS)
def test_new_connections_are_answered_however_their_first_bytes_come(kind):
    with Gunicorn(APPS[kind]) as server:
        port = server.port
        at_once = []
        for _ in range(20):  # (in before the accept, most of them)
            sock = connect(port)
            sock.sendall(CLOSING)
            at_once.append(sock)
        late, pieces, silent = connect(port), connect(port), connect(port)
        wait_until(lambda: accept_queue(port) == 0, 5, what="every client accepted")  # (silent so far)
        late.sendall(CLOSING)
        pieces.sendall(CLOSING[:25])
        wait_until(lambda: read_by_worker(port, pieces), 5, what="the first piece read")
        pieces.sendall(CLOSING[25:])
        silent.close()  # (gone without a word)
        with connect(port) as old:
            old.sendall(b"GET /sleep?s=0 HTTP/1.0\r\nHost: t\r\n\r\n")
            data, ended = read_until_eof(old)
            assert ended and data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"ok")
        with connect(port) as kept:
            kept.sendall(KEPT)
            first = read_response(kept)
            kept.sendall(KEPT)  # (the second read of the connection)
            second = read_response(kept)
            assert (first.status, first.body, second.status, second.body) == (200, b"ok", 200, b"ok")
        assert all(answered(sock) for sock in at_once + [late, pieces])
        for sock in at_once + [late, pieces]:
            sock.close()
    assert "Traceback" not in server.log_text() and "Error" not in server.log_text()


@pytest.mark.parametrize("kind", APPS)
def test_a_client_leaving_while_its_app_runs_does_not_stop_the_next(kind):
    with Gunicorn(APPS[kind], threads=1) as server:
        with connect(server.port) as leaving:
            leaving.sendall(CLOSING.replace(b"s=0", b"s=0.3"))
            wait_until(lambda: read_by_worker(server.port, leaving), 5, what="its request read")  # (its app runs)
            gone = leaving.getsockname()[1]
        wait_until(lambda: server_side(server.port, gone) is None, 5, what="its answer written to nobody, closed")
        with connect(server.port) as sock:
            sock.sendall(CLOSING)
            assert answered(sock)
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize("kind", APPS)
def test_a_silent_connection_is_closed_after_the_header_timeout(kind):
    """A client that connects and sends nothing waits for its first bytes on the worker's
    own watch, not on a loop transport: the header timeout still closes it."""
    with Gunicorn(APPS[kind], env={"ASYNCWORKER_HEADER_TIMEOUT": "1"}) as server, connect(server.port) as sock:
        started = time.monotonic()
        data, ended = read_until_eof(sock, 5)
        elapsed = time.monotonic() - started
    assert ended and (data == b"" or data.startswith(b"HTTP/1.1 408")), data
    assert 0.9 <= elapsed < 3, elapsed


def server_state(port: int, sock: socket.socket) -> int | None:
    side = server_side(port, sock.getsockname()[1])
    return None if side is None else side[0]


def test_a_client_is_accepted_with_its_first_bytes_or_after_the_defer_time():
    """TCP_DEFER_ACCEPT on the listener (ASYNCWORKER_DEFER_ACCEPT, 1 s by default): a client
    that has sent nothing is not handed to the worker yet, one that sends is answered at once,
    and a silent one is accepted once the second has passed (then timed out as any)."""
    with Gunicorn(APPS["wsgi"]) as server:
        port = server.port
        with connect(port) as silent, connect(port) as speaking:
            started = time.monotonic()
            assert server_state(port, silent) == TCP_SYN_RECV
            speaking.sendall(CLOSING)
            assert answered(speaking)
            wait_until(lambda: server_state(port, silent) == TCP_ESTABLISHED, 5, what="the silent client accepted")
            assert time.monotonic() - started >= 0.9
            silent.sendall(CLOSING)
            assert answered(silent)
    assert "defer accept 1 s" in server.log_text()


def test_defer_accept_0_hands_every_client_to_accept_at_once():
    with Gunicorn(APPS["wsgi"], env={"ASYNCWORKER_DEFER_ACCEPT": "0"}) as server, connect(server.port) as sock:
        wait_until(lambda: server_state(server.port, sock) == TCP_ESTABLISHED, 0.5, what="accepted by the kernel")
        sock.sendall(CLOSING)
        assert answered(sock)


def test_new_clients_wait_in_the_accept_queue_while_the_app_threads_have_a_backlog(tmp_path):
    """One thread, held by a request; BACKLOG more requests waiting for it. A new client is
    then left in the kernel's accept queue (for a worker with a free thread), while the loop
    goes on serving the connections it has; once the thread has taken the backlog down it is
    accepted and answered."""
    held_request = b"GET /wait?for=go HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    with Gunicorn(APPS["wsgi"], threads=1, env={"MARKS": str(tmp_path)}) as server:
        port = server.port
        kept = kept_connections(port, 2)  # (each takes one request the loop answers, later)
        running = connect(port)
        running.sendall(held_request)
        wait_until(lambda: len(list(tmp_path.iterdir())) == 1, 5, what="the first request running")
        waiting = []
        for _ in range(BACKLOG):  # (one by one: each accepted, the backlog not yet full)
            sock = connect(port)
            sock.sendall(held_request)
            wait_until(lambda: read_by_worker(port, sock), 5, what="a request read, waiting")
            waiting.append(sock)
        newcomer = connect(port)
        newcomer.sendall(CLOSING)
        wait_until(lambda: acknowledged(newcomer), 5, what="the newcomer's request sent")
        # Two turns of the loop: a 400 is the loop's own answer. A head that does not parse ends no
        # request (no request_done, so no catch_up that would end a hold-off older than 1 ms).
        for sock in kept:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
            assert read_response(sock).status == 400
        assert accept_queue(port) == 1
        (tmp_path / "go").touch()
        assert answered(running) and all(answered(sock) for sock in waiting) and answered(newcomer)
        for sock in kept + waiting + [running, newcomer]:
            sock.close()
    assert "Traceback" not in server.log_text()
