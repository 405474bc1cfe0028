"""``serve_accepted`` (protocol/_accepted.c): a new connection made and served on its accepted
socket, compiled; its reference is ``listeners.serve_accepted_py``.

Each case serves the same client both ways, on real loopback sockets under uvloop: with the
template the listener makes (an ``AcceptedTransport``) and with one of a subclass that
replaces ``serve`` (the C then calls the transport's methods). The two must leave the same
connection and transport behind, tell the loop's exception handler the same, and give the
client the same bytes.
"""

import asyncio
import os
import socket
import sys

import pytest
import uvloop

from helpers import ConnectionOwner, descriptor_open, read_until_eof, tcp_ends, undated, wait_for
from server.protocol.heads import STATUS_LINE
from server.protocol.server import ServerConfig, ServerHttpProtocol
from server.workers import listeners
from server.workers.accepted import AcceptedTransport, FirstBytes

serve_accepted = getattr(sys.modules["server.protocol._chead"], "serve_accepted", None) \
    if "server.protocol._chead" in sys.modules else None
pytestmark = pytest.mark.skipif(serve_accepted is None or listeners.serve_accepted is listeners.serve_accepted_py,
                                reason="the compiled helpers are not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)")
CLOSING = b"GET /now HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
KEPT = b"GET /now HTTP/1.1\r\nHost: t\r\n\r\n"


class Connection(ServerHttpProtocol):
    """Its own app: ``/now`` is answered as it comes; ``/fail`` fails its connection_made."""

    reads_while_running = False

    def __init__(self, config, owner):
        super().__init__(config, owner=owner)
        self.paths = []

    def connection_made(self, transport):
        if self.early_data.startswith(b"GET /fail"):
            raise RuntimeError("connection_made failed")
        self.made_on = transport
        super().connection_made(transport)

    def on_request(self, head):
        self.paths.append(head.path)
        response, data = self.response_head(head, "200 OK", STATUS_LINE, (), 2)
        self.send_response(response, data, b"ok", True, 2)


class Served(AcceptedTransport):
    """A template of another class: the C calls its copy_for and serve."""

    __slots__ = ()
    served = 0

    def serve(self, step, data):
        Served.served += 1
        super().serve(step, data)


def run(serve, template_class, request: bytes, first_bytes=True, factory=None, later=b""):
    """The client ``request`` was read at accept (``later``: sent after), served by ``serve``: the
    connection's state, the transport's, what the loop's handler was told, what the client got."""

    async def main():
        loop = asyncio.get_running_loop()
        told = told_to(loop)
        server, client = tcp_ends()
        made = []

        def make():
            made.append(Connection(ServerConfig(keepalive=5, tcp_keepalive=False), ConnectionOwner()))
            return made[-1]

        def hand(sock, factory, failed):
            loop.create_task(loop.connect_accepted_socket(factory, sock))

        local = server.getsockname()
        template = template_class(loop, -1, None, None, local, hand,
                                  FirstBytes.make(loop) if first_bytes else None, True)
        fd, peer = server.detach(), client.getsockname()
        failure = serve(factory or make, template, fd, peer, request)
        with client:
            if later:
                client.sendall(later)
            client.shutdown(socket.SHUT_WR)
            data, ended = await loop.run_in_executor(None, read_until_eof, client)
        if not made:
            return repr(failure), descriptor_open(fd), data, ended
        proto = made[0]
        await wait_for(lambda: proto._owner.calls[-1:] == ["closed"])
        transport = proto.transport or proto.__class__
        return (repr(failure), proto.paths, proto._owner.calls, proto.sockname == local, proto.peername == peer,
                proto.socket_fd == fd, told, undated(data),
                ended, type(transport).__name__, proto.made_on._peer == peer, proto.made_on._local == local)

    return uvloop.run(main())


def told_to(loop) -> list:
    """What the loop's exception handler is told from now on: (message, exception, the kinds of
    protocol and transport)."""
    told = []
    loop.set_exception_handler(lambda loop, context: told.append(
        (context["message"], repr(context["exception"]), type(context["protocol"]).__name__,
         type(context["transport"]).__name__, context["exception"].__traceback__ is not None)))
    return told


def same(request, **kwargs):
    compiled = run(serve_accepted, AcceptedTransport, request, **kwargs)
    reference = run(listeners.serve_accepted_py, AcceptedTransport, request, **kwargs)
    before = Served.served
    through_methods = run(serve_accepted, Served, request, **kwargs)
    assert compiled == reference == through_methods
    assert Served.served > before or not isinstance(compiled[1], list)  # (its serve ran)
    return compiled


def test_a_request_whole_at_accept_is_answered_and_its_connection_closed_on_its_socket():
    failure, paths, calls, sockname, peer, fd, told, data, ended, _, its_peer, its_local = same(CLOSING)
    assert failure == "None" and paths == ["/now"] and calls == ["opened", "done", "closed"] and its_peer and its_local
    assert sockname and peer and fd and told == [] and ended
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\nok")


def test_a_connection_kept_alive_is_handed_to_the_loop():
    *_, data, ended, transport, _, _ = same(KEPT)
    assert ended and data.endswith(b"ok") and transport == "type"  # (lost: its transport let go)


@pytest.mark.parametrize("first_bytes", [True, False], ids=["watched", "handed over"])
def test_a_client_silent_at_accept_is_read_when_it_sends(first_bytes):
    """Its first bytes are waited for on the worker's epoll, or by the loop's transport."""
    result = same(b"", first_bytes=first_bytes, later=CLOSING)
    assert result[1] == ["/now"] and result[7].endswith(b"ok")


@pytest.mark.parametrize("serve", [serve_accepted, listeners.serve_accepted_py], ids=["compiled", "reference"])
def test_a_client_silent_at_accept_closed_before_it_sends_is_no_longer_watched(serve):
    async def main():
        loop = asyncio.get_running_loop()
        server, client = tcp_ends()
        first_bytes = FirstBytes(loop)
        template = AcceptedTransport(loop, -1, None, None, server.getsockname(), None, first_bytes, True)
        proto = Connection(ServerConfig(keepalive=5, tcp_keepalive=False), ConnectionOwner())
        serve(lambda: proto, template, server.detach(), None, b"")
        watched = len(first_bytes._callbacks)
        proto.close()  # (as its first wait's end closes it)
        with client:
            assert read_until_eof(client) == (b"", True)
        return watched, len(first_bytes._callbacks), proto.made_on._watching

    assert uvloop.run(main()) == (1, 0, False)


def test_a_factory_that_fails_gives_its_exception_and_the_descriptor_is_closed():
    def failing():
        raise ValueError("no connection")

    assert same(CLOSING, factory=failing) == ("ValueError('no connection')", False, b"", True)


def test_a_connection_made_that_fails_is_reported_and_the_client_reset():
    def told(serve, template_class):
        async def main():
            loop = asyncio.get_running_loop()
            seen = told_to(loop)
            server, client = tcp_ends()
            template = template_class(loop, -1, None, None, server.getsockname(), None, None, True)
            proto = Connection(ServerConfig(keepalive=5, tcp_keepalive=False), ConnectionOwner())
            fd = server.detach()
            serve(lambda: proto, template, fd, None, b"GET /fail HTTP/1.1\r\n\r\n")
            with client:
                with pytest.raises(ConnectionResetError):
                    client.recv(10)
            return seen, template_class.__name__

        return uvloop.run(main())

    compiled, reference = told(serve_accepted, AcceptedTransport), told(listeners.serve_accepted_py, AcceptedTransport)
    assert compiled == reference
    assert compiled[0] == [("Error serving a new connection", "RuntimeError('connection_made failed')", "Connection",
                            "AcceptedTransport", True)]


def test_a_keyboard_interrupt_in_the_factory_goes_through():
    def interrupted():
        raise KeyboardInterrupt

    for serve in (serve_accepted, listeners.serve_accepted_py):
        server, client = tcp_ends()
        fd = server.detach()
        with client, pytest.raises(KeyboardInterrupt):
            serve(interrupted, AcceptedTransport(None, -1, None, None, None, None, None, True), fd, None, b"")
        os.close(fd)  # (left open: the worker stops)
