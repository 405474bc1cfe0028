"""The system calls of a new connection: ``accept_early`` (a waiting client's descriptor,
address and first bytes, without a socket object) and ``recv_nowait`` (a read that gives
None rather than raising when nothing waits). The compiled helpers and their Python
references must agree on every outcome."""

import errno
import os
import select
import socket
import struct

import pytest

from helpers import acknowledged, implementations, wait_until
from server.workers import accepted, listeners

ACCEPTS = implementations(listeners.accept_early_py, listeners.accept_early)
READS = implementations(accepted.recv_nowait_py, accepted.recv_nowait)
name = lambda f: f.__name__  # noqa: E731


def listener(family=socket.AF_INET, address=("127.0.0.1", 0)):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(16)
    sock.setblocking(False)
    return sock


def arrived(sock: socket.socket, timeout: float = 5.0) -> None:
    """Wait until ``sock`` has a client waiting, or bytes to read."""
    assert select.select([sock], [], [], timeout)[0], "nothing arrived"


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
def test_no_client_waiting_is_none(accept_early):
    with listener() as sock:
        assert accept_early(sock, 1024, False) is None


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
def test_a_closed_listener_fails_with_ebadf(accept_early):
    sock = listener()
    sock.close()
    with pytest.raises(OSError) as failed:
        accept_early(sock, 1024, False)
    assert failed.value.errno == errno.EBADF


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\n\r\n", b"x" * 5000])
@pytest.mark.parametrize("keepalive", [False, True])
def test_a_client_is_accepted_with_its_address_and_at_most_read_size_bytes(accept_early, sent, keepalive):
    with listener() as sock, socket.create_connection(sock.getsockname(), timeout=5) as client:
        if sent:
            client.sendall(sent)
            wait_until(lambda: acknowledged(client), 5, what="the bytes in the server's receive queue")
        arrived(sock)
        fd, address, data = accept_early(sock, 4096, keepalive)
        with socket.socket(fileno=fd) as conn:
            assert address == client.getsockname() and data == sent[:4096]
            assert conn.getpeername() == client.getsockname()
            assert not os.get_blocking(fd) and not os.get_inheritable(fd)
            assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == int(keepalive)


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
def test_each_client_has_its_own_ipv4_address(accept_early):
    """Clients from several addresses in turn, each twice (the compiled one keeps the last
    client's host): every octet's width, in each place."""
    sources = ["127.0.0.1", "127.0.0.1", "127.10.200.3", "127.255.9.99", "127.255.9.99", "127.0.0.1",
               "127.100.0.250"]
    with listener() as sock:
        for source in sources:
            with socket.socket() as client:
                client.bind((source, 0))
                client.connect(sock.getsockname())
                arrived(sock)
                fd, address, _ = accept_early(sock, 0, False)
                os.close(fd)
                assert address == client.getsockname() == (source, client.getsockname()[1])


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
def test_no_read_asked_reads_nothing(accept_early):
    with listener() as sock, socket.create_connection(sock.getsockname(), timeout=5) as client:
        client.sendall(b"left for the transport")
        wait_until(lambda: acknowledged(client), 5, what="the bytes in the server's receive queue")
        fd, _, data = accept_early(sock, 0, False)
        with socket.socket(fileno=fd) as conn:
            assert data == b"" and conn.recv(100) == b"left for the transport"


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
def test_an_ipv6_client_has_its_four_part_address(accept_early):
    try:
        sock = listener(socket.AF_INET6, ("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with sock, socket.create_connection(sock.getsockname()[:2], timeout=5) as client:
        arrived(sock)
        fd, address, data = accept_early(sock, 1024, True)
        os.close(fd)
        assert address == client.getsockname() and len(address) == 4 and data == b""


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
def test_a_unix_client_has_no_address(accept_early, tmp_path):
    path = str(tmp_path / "s")
    with listener(socket.AF_UNIX, path) as sock, socket.socket(socket.AF_UNIX) as client:
        client.connect(path)
        client.sendall(b"hi")
        arrived(sock)
        fd, address, data = accept_early(sock, 1024, False)  # (keepalive is asked for TCP only)
        os.close(fd)
        assert (address, data) == (None, b"hi")


@pytest.mark.parametrize("accept_early", ACCEPTS, ids=name)
def test_a_client_reset_before_the_accept_gives_no_bytes(accept_early):
    """Linux keeps a connection reset in the accept queue: it is accepted, with no bytes and
    no exception, and its descriptor tells the end (the reset was taken by the read at
    accept) or the reset (it came after)."""
    with listener() as sock:
        client = socket.create_connection(sock.getsockname(), timeout=5)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        arrived(sock)
        fd, _, data = accept_early(sock, 1024, False)
        with socket.socket(fileno=fd) as conn:
            assert data == b""
            arrived(conn)
            try:
                after = conn.recv(10)
            except ConnectionResetError:
                after = "reset"
            assert after in (b"", "reset")


def accepted_pair(sock):
    client = socket.create_connection(sock.getsockname(), timeout=5)
    conn, _ = sock.accept()
    conn.setblocking(False)
    return conn, client


@pytest.mark.parametrize("recv_nowait", READS, ids=name)
def test_recv_nowait_tells_nothing_bytes_and_end_apart(recv_nowait):
    with listener() as sock:
        conn, client = accepted_pair(sock)
        with conn, client:
            assert recv_nowait(conn.fileno(), 100) is None
            client.sendall(b"abcdef")
            arrived(conn)
            assert recv_nowait(conn.fileno(), 4) == b"abcd"
            assert recv_nowait(conn.fileno(), 100) == b"ef"
            client.shutdown(socket.SHUT_WR)
            arrived(conn)
            assert recv_nowait(conn.fileno(), 100) == b""


@pytest.mark.parametrize("recv_nowait", READS, ids=name)
def test_recv_nowait_raises_for_a_reset(recv_nowait):
    with listener() as sock:
        conn, client = accepted_pair(sock)
        with conn:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            arrived(conn)
            with pytest.raises(ConnectionResetError):
                recv_nowait(conn.fileno(), 100)


@pytest.mark.parametrize("recv_nowait", READS, ids=name)
def test_recv_nowait_on_a_closed_descriptor_raises(recv_nowait):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        recv_nowait(r, 10)


@pytest.mark.skipif(not listeners.INHERITS_SOCKET_OPTIONS, reason="connections here do not inherit the listener's options")
@pytest.mark.parametrize("keepalive", [False, True])
def test_keepalive_is_set_on_the_listener_and_its_connections_inherit_it(keepalive):
    """``tcp_keepalive`` as asked, off included (a listener a worker before set on keeps it
    otherwise), on the listener. A client that was waiting already was made with the
    listener's option as it was: it gets its own call. Once no client waits, every one that
    comes has it from the listener, and no call more: the listener's option, turned over
    afterwards, shows it."""
    with listener() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(not keepalive))
        early = socket.create_connection(sock.getsockname(), timeout=5)
        arrived(sock)
        acceptor = listeners.Acceptor(sock, keepalive, 1024)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == int(keepalive)
        with early, socket.socket(fileno=acceptor.accept()[0]) as conn:
            if keepalive:  # (off, a client that waited keeps it on: harmless, and a call each to undo)
                assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert acceptor.accept() is None  # none waits now
        for listener_option in (keepalive, not keepalive):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(listener_option))
            with socket.create_connection(sock.getsockname(), timeout=5):
                arrived(sock)
                fd, _, _ = acceptor.accept()
                with socket.socket(fileno=fd) as conn:
                    assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == int(listener_option)
