"""Every cache of per-value work is bounded: past its size it is emptied, never grown,
and what it gives back stays right across the emptying."""

import pytest

from server.asgi import head as asgi_head
from server.protocol import writer
from server.protocol.caches import remember
from server.web import response as web_response
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


def test_native_response_heads(monkeypatch):
    monkeypatch.setattr(web_response, "HEAD_CACHE_SIZE", SIZE)
    for i in range(DISTINCT):
        lines = web_response._head_lines(200, "OK", (("X-N", str(i)),))
        assert lines == f"HTTP/1.1 200 OK\r\nX-N: {i}\r\n".encode()
        assert len(web_response._head_cache) <= SIZE


@pytest.mark.parametrize("rounds", [1, 2])
def test_asgi_response_heads(monkeypatch, rounds):
    """The second round asks again for heads that were emptied out: the same bytes."""
    monkeypatch.setattr(asgi_head, "CACHE_SIZE", SIZE)
    cache = asgi_head.HeadCache()
    for _ in range(rounds):
        for i in range(DISTINCT):
            message = {"status": 200, "headers": [(b"x-n", b"%d" % i), (b"content-length", b"0")]}
            head, data = cache.head(message, "GET", (1, 1), True)
            assert b"\r\nx-n: %d\r\n" % i in data and head.length == 0
            assert len(cache._heads) <= SIZE


def test_asgi_head_cache_keys_only_exact_bytes_pairs():
    """A list of lists is found like the tuples it equals; a memoryview, equal to the
    cached bytes, is not: it takes the full checks, which refuse it."""
    from server.asgi.messages import InvalidMessage

    cache = asgi_head.HeadCache()
    first, data = cache.head({"status": 200, "headers": [(b"content-length", b"2")]}, "GET", (1, 1), True)
    again, data_again = cache.head({"status": 200, "headers": [[b"content-length", b"2"]]}, "GET", (1, 1), True)
    assert again is first and data_again == data
    with pytest.raises(InvalidMessage, match="must be bytes"):
        cache.head({"status": 200, "headers": [(b"content-length", memoryview(b"2"))]}, "GET", (1, 1), True)
    assert len(cache._heads) == 1
