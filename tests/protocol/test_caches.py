"""Every cache of per-value work is bounded: past its size it is emptied, never grown,
and what it gives back stays right across the emptying."""

import pytest

from server.asgi.fields import bytes_pairs
from server.asgi.messages import InvalidMessage, header_pairs
from server.protocol import heads, writer
from server.protocol.caches import remember
from server.wsgi import environ

SIZE = 4
DISTINCT = 3 * SIZE + 1


def test_remember_empties_a_full_cache_before_storing():
    cache = {}
    for i in range(SIZE):
        assert remember(cache, i, str(i), SIZE) == str(i)
    assert len(cache) == SIZE
    remember(cache, "next", "v", SIZE)
    assert cache == {"next": "v"}


def test_status_lines(monkeypatch):
    monkeypatch.setattr(writer, "LINE_CACHE_SIZE", SIZE)
    for i in range(DISTINCT):
        assert writer.parse_status(f"299 Reason {i}") == (299, f"Reason {i}")
        assert len(writer._status_cache) <= SIZE


def test_response_header_lines(monkeypatch):
    monkeypatch.setattr(writer, "LINE_CACHE_SIZE", SIZE)
    for i in range(DISTINCT):
        head = writer.ResponseWriter("GET", (1, 1), True).head(200, "OK", [("X-N", str(i))], 0)
        assert f"\r\nX-N: {i}\r\n".encode() in head
        assert len(writer._line_cache) <= SIZE


def test_environ_keys_of_client_header_names(monkeypatch):
    monkeypatch.setattr(environ, "KEY_CACHE_SIZE", SIZE)
    for i in range(DISTINCT):
        assert environ._environ_key(f"X-Name-{i}", frozenset()) == f"HTTP_X_NAME_{i}"
        assert len(environ._keys) <= SIZE


def test_response_heads_of_str_fields(monkeypatch):
    """WSGI and native heads: one entry per distinct head, whatever the size of a sized body."""
    monkeypatch.setattr(heads, "CACHE_SIZE", SIZE)
    cache = heads.HeadCache()
    for i in range(DISTINCT):
        for size in (1, 10, 100):
            head, data = cache.head(200, "OK", (("X-N", str(i)),), "GET", (1, 1), True, size)
            assert data.startswith(f"HTTP/1.1 200 OK\r\nX-N: {i}\r\nContent-Length: {size}\r\n".encode())
            assert head.sized
        assert len(cache.cache) <= SIZE


@pytest.mark.parametrize("rounds", [1, 2])
def test_asgi_response_heads(monkeypatch, rounds):
    """The second round asks again for heads that were emptied out: the same bytes."""
    monkeypatch.setattr(heads, "CACHE_SIZE", SIZE)
    cache = heads.HeadCache()
    for _ in range(rounds):
        for i in range(DISTINCT):
            fields = ((b"x-n", b"%d" % i), (b"content-length", b"0"))
            head, data = cache.head(200, None, fields, "GET", (1, 1), True, normalise=header_pairs)
            assert b"\r\nx-n: %d\r\n" % i in data and head.length == 0
            assert len(cache.cache) <= SIZE


def test_asgi_head_cache_keys_only_exact_bytes_pairs():
    """A list of lists is found like the tuples it equals; a memoryview, equal to the
    cached bytes, is not: it takes the full checks, which refuse it."""
    cache = heads.HeadCache()

    def head_of(raw):
        fields = bytes_pairs(raw)
        if fields is None:
            fields = tuple(header_pairs(raw))
        return cache.head(200, None, fields, "GET", (1, 1), True, normalise=header_pairs)

    first, data = head_of([(b"content-length", b"2")])
    again, data_again = head_of([[b"content-length", b"2"]])
    assert again is first and data_again == data
    with pytest.raises(InvalidMessage, match="must be bytes"):
        head_of([(b"content-length", memoryview(b"2"))])
    assert len(cache.cache) == 1
