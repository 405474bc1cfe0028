"""SIGINT and SIGQUIT to gunicorn's master (a quick stop: the master sends QUIT to its
workers): WSGI requests already in the app finish and get their response, as with
gunicorn's gthread worker, within graceful_timeout; idle connections close at once and
the worker exits as soon as the last response is out. ASGI requests are cut, as
gunicorn's own ASGI worker cuts them."""

import signal
import time

import pytest

from helpers import Gunicorn, connect, read_response, read_until_eof, wait_until

SLEEP = "GET /sleep?s={} HTTP/1.1\r\nHost: t\r\n\r\n"


def in_flight(srv: Gunicorn, count: int, seconds: float) -> list:
    """``count`` connections each with a request in the app (two threads: two run, the rest wait)."""
    socks = [connect(srv.port, timeout=15) for _ in range(count)]
    for sock in socks:
        sock.sendall(SLEEP.format(seconds).encode())
    time.sleep(0.5)  # in the app (or waiting for a thread)
    return socks


def idle_connection(srv: Gunicorn):
    sock = connect(srv.port, timeout=15)
    sock.sendall(SLEEP.format(0).encode())
    assert read_response(sock).status == 200
    return sock


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["SIGINT", "SIGQUIT"])
def test_in_flight_wsgi_requests_get_their_response_then_the_worker_exits(sig):
    with Gunicorn("slow_apps:wsgi_app", "--graceful-timeout", "30", "--keep-alive", "30", threads=2) as srv:
        idle = idle_connection(srv)
        busy = in_flight(srv, 4, 1.5)  # two in the threads, two waiting for one
        t0 = time.monotonic()
        srv.signal(sig)
        data, closed = read_until_eof(idle, 5)
        idle_closed_after = time.monotonic() - t0
        responses = []
        for sock in busy:
            responses.append(read_response(sock))
            assert read_until_eof(sock, 5) == (b"", True)
        answered_after = time.monotonic() - t0
        assert srv.proc.wait(10) == 0
        exited_after = time.monotonic() - t0
    assert (data, closed) == (b"", True) and idle_closed_after < 1, idle_closed_after
    assert [(r.status, r.body, r.header("connection")) for r in responses] == [(200, b"ok", "close")] * 4
    assert 2 < answered_after < 8, answered_after  # two rounds of 1.5 s on two threads
    assert exited_after - answered_after < 2, (answered_after, exited_after)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["SIGINT", "SIGQUIT"])
def test_gthread_answers_in_flight_requests_on_a_quick_stop_too(sig):
    """The behaviour matched above, measured on gunicorn's gthread worker."""
    with Gunicorn("slow_apps:wsgi_app", "-k", "gthread", "--graceful-timeout", "30", threads=2) as srv:
        busy = in_flight(srv, 2, 1.5)
        srv.signal(sig)
        statuses = [read_response(sock).status for sock in busy]
        assert srv.proc.wait(10) == 0
    assert statuses == [200, 200]


def test_a_quick_stop_is_bounded_by_graceful_timeout():
    with Gunicorn("slow_apps:wsgi_app", "--graceful-timeout", "2", threads=2) as srv:
        busy = in_flight(srv, 1, 30)
        t0 = time.monotonic()
        srv.signal(signal.SIGINT)
        data, closed = read_until_eof(busy[0], 10)
        cut_after = time.monotonic() - t0
        srv.proc.wait(10)
    assert (data, closed) == (b"", True)
    assert 1.5 < cut_after < 5, cut_after


def test_sigint_during_a_graceful_stop_cuts_what_is_not_in_the_app():
    """TERM, then INT (the master passes QUIT on): a connection still sending its request
    head, which the graceful stop waited for, closes at once; the app's request finishes."""
    with Gunicorn("slow_apps:wsgi_app", "--graceful-timeout", "30", threads=2) as srv:
        busy = in_flight(srv, 1, 2)
        partial = connect(srv.port, timeout=15)
        partial.sendall(b"GET /sleep?s=0 HTTP/1.1\r\n")
        srv.signal(signal.SIGTERM)
        wait_until(lambda: "Worker stopping gracefully" in srv.log_text(), 5, what="the graceful stop")
        t0 = time.monotonic()
        srv.signal(signal.SIGINT)
        data, closed = read_until_eof(partial, 8)
        cut_after = time.monotonic() - t0
        response = read_response(busy[0])
        assert srv.proc.wait(10) == 0
    assert (data, closed) == (b"", True) and cut_after < 1, (data, cut_after)
    assert (response.status, response.body) == (200, b"ok")


def test_asgi_requests_are_cut_at_once_on_a_quick_stop():
    with Gunicorn("slow_apps:app", "--graceful-timeout", "30") as srv:
        busy = in_flight(srv, 1, 10)
        t0 = time.monotonic()
        srv.signal(signal.SIGQUIT)
        data, closed = read_until_eof(busy[0], 10)
        cut_after = time.monotonic() - t0
        assert srv.proc.wait(10) == 0
    assert (data, closed) == (b"", True)
    assert cut_after < 2, cut_after
