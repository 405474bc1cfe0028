"""Which connections sending a file keep little unsent (files.py, ``UNSENT_LIMIT``) and get
Reno if BBR paced them (``PACED``): those from this host only. Both on a real worker:
tests/integration/test_file_bodies.py."""

import socket

import pytest

from helpers import listener_with_congestion
from server.protocol.files import UNSENT_LIMIT, prepare_local_sendfile, same_host


@pytest.mark.parametrize("peer, local, expected", [
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.2", "127.0.0.1", True),  # (all of 127/8 is this host)
    ("::1", "::1", True),
    ("::ffff:127.0.0.1", "::ffff:127.0.0.1", True),
    ("::ffff:127.0.0.5", "::ffff:10.0.0.5", True),
    ("10.0.0.5", "10.0.0.5", True),  # (a client of the host's own address)
    ("10.0.0.7", "10.0.0.5", False),
    ("::ffff:10.0.0.7", "::ffff:10.0.0.5", False),
    ("2001:db8::1", "2001:db8::2", False),
    ("fe80::1%eth0", "fe80::2%eth0", False),  # (zoned: another host on the link)
    ("::1%lo", "::1%lo", True),
])
def test_same_host(peer, local, expected):
    assert same_host(peer, local) is expected


def unsent_limit_of(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)


def test_a_loopback_connection_gets_the_limit_for_a_file_longer_than_it():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert unsent_limit_of(accepted) == 0
                prepare_local_sendfile(accepted, UNSENT_LIMIT)  # (a file no longer than the limit)
                assert unsent_limit_of(accepted) == 0
                prepare_local_sendfile(accepted, UNSENT_LIMIT + 1)
                assert unsent_limit_of(accepted) == UNSENT_LIMIT
                assert unsent_limit_of(client) == 0


def congestion_of(sock: socket.socket) -> bytes:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0")


@pytest.mark.parametrize("congestion, then", [("bbr", b"reno"), ("reno", b"reno"), ("cubic", b"cubic")])
def test_a_loopback_connection_that_bbr_paces_gets_reno_for_a_file_longer_than_the_limit(congestion, then):
    with listener_with_congestion(congestion) as listener:  # (the connections it accepts inherit it)
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                prepare_local_sendfile(accepted, UNSENT_LIMIT)  # (a file no longer than the limit)
                assert congestion_of(accepted) == congestion.encode()
                prepare_local_sendfile(accepted, UNSENT_LIMIT + 1)
                assert congestion_of(accepted) == then
