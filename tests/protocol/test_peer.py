"""peer.py's shared local addresses: connections to one local address share its tuple,
for at most SOCKNAMES_SHARED addresses."""

from server.protocol import peer


def test_connections_to_one_address_share_its_tuple(monkeypatch):
    monkeypatch.setattr(peer, "_socknames", {})
    first = peer.shared_sockname(("127.0.0.1", 8000))
    again = peer.shared_sockname(tuple(["127.0.0.1", 8000]))  # (an equal tuple, not the same one)
    assert again is first and again == ("127.0.0.1", 8000)
    assert peer.shared_sockname("/run/app.sock") == "/run/app.sock"  # (a unix socket's name: as it is)


def test_past_the_bound_an_address_is_kept_by_its_connection_alone(monkeypatch):
    monkeypatch.setattr(peer, "_socknames", {})
    for port in range(peer.SOCKNAMES_SHARED):
        peer.shared_sockname(("10.0.0.1", port))
    assert len(peer._socknames) == peer.SOCKNAMES_SHARED
    one, other = ("10.0.0.2", 1), tuple(["10.0.0.2", 1])
    assert peer.shared_sockname(one) is one and peer.shared_sockname(other) is other
    assert len(peer._socknames) == peer.SOCKNAMES_SHARED  # (the table grows no more)
    assert peer.shared_sockname(("10.0.0.1", 0)) == ("10.0.0.1", 0)
