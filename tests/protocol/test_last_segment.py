"""The last answer before a close goes out with its FIN, in one TCP segment (cork.py).

A response the connection closes after (``Connection: close``, HTTP/1.0) is sent with
``MSG_MORE`` and the write side shut at once, which adds the FIN to its segment: one
packet instead of two, each of which costs the kernel's whole path on both ends. Counted
by the client, from its socket's ``TCP_INFO``: the segments it received, from when the
server has acknowledged the request (``acknowledged``)."""

import asyncio
import contextlib
import socket
import struct

import pytest
import uvloop

from helpers import (Gunicorn, acknowledged, connect, implementations, read_response, read_until_eof,
                     segments_received, tcp_ends, wait_for, wait_until)
from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol import cork
from server.protocol.server import PIPELINE_BUFFER, ServerConfig

APPS = {"wsgi": "slow_apps:wsgi_app", "asgi": "slow_apps:app", "native": "slow_apps:native_app"}
ANSWER_AFTER = 0.6  # seconds the app waits: long after the server's ACK (Linux delays one 200 ms at most)
TCP_CLOSE = 7  # tcpi_state of a socket the peer reset


@contextlib.contextmanager
def tcp_pair():
    server, client = tcp_ends()
    with server, client:
        yield server, client


SENDERS = implementations(cork.send_last_py, cork.send_last)


@pytest.mark.parametrize("send_last", SENDERS, ids=lambda f: f.__name__)
def test_send_last_sends_the_bytes_and_the_fin_in_one_segment(send_last):
    with tcp_pair() as (server, client):
        before = segments_received(client)
        assert send_last(server.fileno(), b"the end") == 7
        assert read_until_eof(client)[0] == b"the end"  # (the server's socket is still open)
        assert segments_received(client) == before + 1


@pytest.mark.parametrize("send_last", SENDERS, ids=lambda f: f.__name__)
def test_send_last_shuts_nothing_when_the_socket_takes_part(send_last):
    """The rest then goes by the transport, before the close's FIN."""
    with tcp_pair() as (server, client):
        big = b"x" * (16 * 1024 * 1024)
        taken = send_last(server.fileno(), big)
        assert 0 < taken < len(big)
        rest = big[taken:]
        received = 0
        while received < len(big):
            received += len(client.recv(1 << 20))
            while rest:
                try:
                    rest = rest[server.send(rest):]
                except BlockingIOError:
                    break
        server.close()
        assert received == len(big) and client.recv(1) == b""


@pytest.mark.parametrize("send_last", SENDERS, ids=lambda f: f.__name__)
def test_send_last_fails_as_send_now_does(send_last):
    with tcp_pair() as (server, client):
        assert 0 < send_last(server.fileno(), b"x" * (16 * 1024 * 1024)) < 16 * 1024 * 1024
        with pytest.raises(BlockingIOError):
            send_last(server.fileno(), b"full")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # (a reset)
        wait_until(lambda: server.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE, 5,
                   what="the reset")
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            send_last(server.fileno(), b"gone")
    with pytest.raises(OSError):
        send_last(server.fileno(), b"closed")  # (a closed descriptor: -1)


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


async def answering_when_told() -> tuple[asyncio.Event, ASGIServerHttpProtocol, socket.socket]:
    """An ASGI connection on a real TCP socket, given its descriptor as the listener gives it,
    whose app answers ``ok`` when the event is set; ``(event, protocol, client socket)``."""
    loop = asyncio.get_running_loop()
    go = asyncio.Event()

    async def app(scope, receive, send):
        await go.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    ours, client = tcp_ends()
    protocol = ASGIServerHttpProtocol(ASGIConfig(app=app, log=QuietLog()), ServerConfig(log=QuietLog(), keepalive=5),
                                      loop=loop)
    protocol.socket_fd = ours.fileno()
    await loop.connect_accepted_socket(lambda: protocol, ours)
    return go, protocol, client


async def closing_answer(held: bool) -> tuple[bytes, int]:
    """A ``Connection: close`` request answered; ``(what the client read, segments)``.
    ``held``: another answer is due in the same pass of the loop, so this one is held
    (cork.py) until the close writes it."""
    go, protocol, client = await answering_when_told()
    client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    await wait_for(lambda: acknowledged(client))
    before = segments_received(client)
    if held:
        protocol.pass_end.expected = protocol.pass_end.answered + 2
    go.set()
    with client:
        data, ended = await asyncio.get_running_loop().run_in_executor(None, read_until_eof, client)
        assert ended
        return data, segments_received(client) - before


@pytest.mark.parametrize("held", [False, True], ids=["written-at-once", "held-until-the-close"])
def test_a_connection_closing_after_its_answer_sends_it_with_its_fin(held):
    data, segments = uvloop.run(closing_answer(held))
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok"), data
    assert segments == 1


async def closing_with_unread_input() -> bytes:
    """A keep-alive request answered after a graceful stop began (so with ``Connection:
    close``), while the client's pipelined requests wait unread in the kernel (reading
    paused past ``PIPELINE_BUFFER``): the close then resets the connection."""
    loop = asyncio.get_running_loop()
    go, protocol, client = await answering_when_told()
    request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    with client:
        await loop.run_in_executor(None, client.sendall, request * (1 + 4 * PIPELINE_BUFFER // len(request)))
        await wait_for(lambda: protocol._read_paused_by)  # (the rest waits in the kernel)
        protocol.closing()
        go.set()
        return (await loop.run_in_executor(None, read_until_eof, client))[0]


def test_an_answer_before_a_close_that_resets_still_reaches_the_client():
    """The FIN goes with the answer by a shutdown before the close: a close with unread input
    sends a reset and drops what TCP still held."""
    data = uvloop.run(closing_with_unread_input())
    assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in data and data.endswith(b"ok"), data


def answer_segments(port: int, request: bytes) -> tuple[bytes, int]:
    """Send ``request`` (for ``/sleep``); ``(response, segments received for it)``, counted from
    when the server's ACK of the request has come to the end of input."""
    with connect(port, timeout=10) as sock:
        sock.sendall(request)
        wait_until(lambda: acknowledged(sock), 5, what="the server's ACK")
        before = segments_received(sock)
        data, ended = read_until_eof(sock, timeout=10)
        assert ended, data
        return data, segments_received(sock) - before


@pytest.mark.parametrize("kind", sorted(APPS))
def test_the_answer_before_a_close_comes_with_its_fin(kind):
    """Alone in the worker, as a WSGI thread would write it itself (lease.py) if it stayed open."""
    with Gunicorn(APPS[kind], env={"ASYNCWORKER_APP_KIND": kind}) as server:
        data, segments = answer_segments(
            server.port, f"GET /sleep?s={ANSWER_AFTER} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok"), data
        assert segments == 1


def test_an_http_1_0_answer_comes_with_its_fin():
    with Gunicorn(APPS["wsgi"], env={"ASYNCWORKER_APP_KIND": "wsgi"}) as server:
        data, segments = answer_segments(server.port, f"GET /sleep?s={ANSWER_AFTER} HTTP/1.0\r\n\r\n".encode())
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok"), data
        assert segments == 1


@pytest.mark.parametrize("kind", sorted(APPS))
def test_a_kept_alive_answer_keeps_its_connection_open(kind):
    """Only the last answer goes with a FIN (``send_last`` shuts the write side): after one the
    connection stays open after, the next request is answered on it."""
    with Gunicorn(APPS[kind], env={"ASYNCWORKER_APP_KIND": kind}) as server, \
            connect(server.port, timeout=10) as sock:
        for _ in range(2):
            sock.sendall(b"GET /sleep?s=0 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).body == b"ok"
