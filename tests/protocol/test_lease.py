"""The socket lease an app thread writes a whole response through (server/protocol/lease.py)."""

import asyncio
import os
import socket
import ssl

import pytest
import trustme
import uvloop

from server.protocol import lease
from server.protocol.lease import SocketLease
from helpers import connected, implementations, wait_for
from server.protocol.server import ServerConfig, ServerHttpProtocol


class Quiet(ServerHttpProtocol):
    """A connection whose requests nobody answers: the test drives its response side."""

    def __init__(self, config=None):
        super().__init__(config or ServerConfig(keepalive=5))

    def on_request(self, head):
        return None


def run(coro_fn, loop_kind):
    if loop_kind == "uvloop":
        return uvloop.run(coro_fn())
    return asyncio.run(coro_fn())


@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
def test_a_lease_writes_to_its_connection_and_only_while_nothing_else_does(loop_kind):
    async def main():
        proto = Quiet()
        theirs = await connected(proto)
        lease = proto.lease_socket()
        try:
            assert lease is not None
            assert lease.write(proto, b"first") == 5
            assert theirs.recv(100) == b"first"
            # The response is now started: a second write through a lease stands back.
            assert lease.write(proto, b"again") == -1
            proto._response_started = False
            proto.write_closed = True
            assert lease.write(proto, b"closed") == -1
            proto.write_closed = False
            # A socket that takes only part of a write: the count says how much.
            big = b"x" * (16 * 1024 * 1024)
            taken = lease.write(proto, big)
            assert 0 < taken < len(big)
            proto._response_started = False
            proto.transport.write(b"queued")  # the socket is full: the transport buffers it
            assert proto.transport.get_write_buffer_size() > 0
            assert lease.write(proto, b"after") == -1
            assert not proto._response_started
        finally:
            lease.release()
            assert lease.fd == -1
            proto.transport.abort()
            theirs.close()

    run(main, loop_kind)


def test_a_lease_names_its_socket_after_the_transport_closed_and_its_number_was_reused():
    async def main():
        proto = Quiet()
        theirs = await connected(proto)
        number = proto.transport.get_extra_info("socket").fileno()
        lease = proto.lease_socket()
        proto.transport.abort()
        await wait_for(lambda: proto.transport is None)
        reused, peer = socket.socketpair()
        try:
            if number not in (reused.fileno(), peer.fileno()):
                pytest.skip("the descriptor number was not reused")
            os.write(lease.fd, b"late")  # (what a thread finishing late would do)
            assert theirs.recv(100) == b"late"
            for sock in (reused, peer):
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(100)
        finally:
            lease.release()
            reused.close()
            peer.close()
            theirs.close()

    uvloop.run(main())


def test_a_closing_transport_gives_no_lease():
    async def main():
        proto = Quiet()
        theirs = await connected(proto)
        proto.transport.close()
        assert proto.lease_socket() is None
        theirs.close()

    uvloop.run(main())


def test_a_tls_connection_gives_no_lease():
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main():
        protos = []

        def factory():
            protos.append(Quiet())
            return protos[-1]

        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="127.0.0.1")
        await wait_for(lambda: protos and protos[0].transport is not None)
        assert protos[0].transport.get_extra_info("socket") is not None  # a socket there is, but under TLS
        assert protos[0].lease_socket() is None
        writer.close()
        server.close()

    uvloop.run(main())


def test_a_plain_tcp_connection_gives_a_lease_of_its_own_socket():
    async def main():
        protos = []

        def factory():
            protos.append(Quiet())
            return protos[-1]

        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await wait_for(lambda: protos and protos[0].transport is not None)
        lease = protos[0].lease_socket()
        sock = protos[0].transport.get_extra_info("socket")
        assert isinstance(lease, SocketLease) and lease.fd != sock.fileno()
        assert os.fstat(lease.fd).st_ino == os.fstat(sock.fileno()).st_ino
        lease.release()
        writer.close()
        server.close()

    uvloop.run(main())


def test_a_kept_lease_serves_its_connection_next_and_a_worker_keeps_one():
    async def main():
        config = ServerConfig(keepalive=5)
        first, second = Quiet(config), Quiet(config)
        clients = [await connected(first), await connected(second)]
        try:
            lease = first.lease_socket()
            first.whole_written(*answered(first), lease)  # (the loop, after the thread wrote it all)
            assert lease.fd >= 0 and first.lease_socket() is lease  # no dup for the next response
            first.whole_written(*answered(first), lease)
            other = second.lease_socket()
            assert other is not lease and other.fd >= 0
            second.whole_written(*answered(second), other)  # the worker keeps one: the first's goes
            assert lease.fd == -1 and other.fd >= 0
            again = first.lease_socket()  # (its kept one is gone: a new dup)
            assert again is not None and again.fd not in (-1, other.fd)
            again.release()
        finally:
            for proto in (first, second):
                proto.transport.abort()
            await wait_for(lambda: first.transport is None and second.transport is None)
            for client in clients:
                client.close()
        assert other.fd == -1  # the connection's end lets its kept lease go

    uvloop.run(main())


def test_a_close_lets_the_kept_lease_go_before_the_transport_closes():
    """A descriptor of the socket left open would hold back the close's FIN."""
    async def main():
        proto = Quiet()
        theirs = await connected(proto)
        lease = proto.lease_socket()
        proto.whole_written(*answered(proto), lease)
        assert lease.fd >= 0
        proto.close()
        assert lease.fd == -1 and proto.config.lease_keeper.channel is None
        await wait_for(lambda: proto.transport is None)
        theirs.close()

    uvloop.run(main())


def answered(proto) -> tuple:
    """``(head, rest, size)`` of a whole answer to a request the test made up, as ``whole_written``
    takes them: the connection takes it as in flight."""
    proto.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    request = proto._head
    head, _ = proto.response_head(request, 200, None, (), 0)
    return head, b"", 0


@pytest.mark.parametrize("write", implementations(os.write, lease.send_now), ids=lambda w: w.__name__)
def test_the_compiled_write_does_what_os_write_does(write):
    """``send_now`` (C, the GIL held) against its reference ``os.write``, on a real socket."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    try:
        assert write(ours.fileno(), b"abc") == 3 and theirs.recv(10) == b"abc"
        taken = 0
        with pytest.raises(BlockingIOError):
            while True:
                taken += write(ours.fileno(), b"x" * 65536)
        assert taken > 0
        theirs.close()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            write(ours.fileno(), b"gone")
    finally:
        ours.close()
        theirs.close()
    with pytest.raises(OSError):
        write(ours.fileno(), b"closed")  # (a closed descriptor: -1)
