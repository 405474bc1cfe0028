"""The HPACK fields of a response head are made once per head and length on a connection
(H2Stream._fields): what is kept is bounded, and every response gets a list of its own with
the date of now."""

from types import SimpleNamespace

import pytest

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

from server.http2.stream import MAX_KEPT_FIELDS, H2Stream  # noqa: E402


def stream_of(conn):
    stream = SimpleNamespace(conn=conn, config=SimpleNamespace(server_header=b"asyncworker"))
    stream._head_fields = lambda head, length: H2Stream._head_fields(stream, head, length)
    return stream


class Head:
    """What _fields reads of a response head (heads.py's Head; hashed by identity as it is)."""

    def __init__(self, status: int, fields):
        self.status = status
        self.headers = list(fields)


def head(status=200, fields=(("Content-Type", "text/plain"), ("Connection", "close"))):
    return Head(status, fields)


def test_fields_of_a_head_and_length():
    conn = SimpleNamespace(response_fields={})
    stream, ok = stream_of(conn), head()
    first = H2Stream._fields(stream, ok, SimpleNamespace(length=5))
    assert first[:-1] == [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"5"),
                          (b"server", b"asyncworker")]
    assert first[-1][0] == b"date"
    first.append((b"x-more", b"1"))  # (a list of its own)
    again = H2Stream._fields(stream, ok, SimpleNamespace(length=5))
    assert (b"x-more", b"1") not in again and again[:-1] == first[:-2]
    longer = H2Stream._fields(stream, ok, SimpleNamespace(length=70))
    assert (b"content-length", b"70") in longer
    assert (b"content-length", b"7") not in H2Stream._fields(stream, head(204), SimpleNamespace(length=7))


def test_what_a_connection_keeps_is_bounded():
    conn = SimpleNamespace(response_fields={})
    stream = stream_of(conn)
    most = 0
    for length in range(3 * MAX_KEPT_FIELDS):
        fields = H2Stream._fields(stream, head(), SimpleNamespace(length=length))
        assert (b"content-length", b"%d" % length) in fields
        most = max(most, len(conn.response_fields))
    assert most == MAX_KEPT_FIELDS
