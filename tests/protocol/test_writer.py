"""Sans-IO tests of the response writer (server/protocol/writer.py): status, headers and
body pieces in, bytes out."""

from types import SimpleNamespace

import pytest

from server.protocol import writer as writer_module
from server.protocol.errors import ResponseHeaderError
from server.protocol.writer import (
    HOP_BY_HOP,
    ResponseWriter,
    check_header,
    error_response,
    http_date,
    parse_status,
)

# --- helpers ---------------------------------------------------------------------------

HTTP11, HTTP10 = (1, 1), (1, 0)


def split_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(status line, [(name, value), ...]) of a serialised head, which must end in CRLFCRLF."""
    assert head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1
    status, *lines = head[:-4].split(b"\r\n")
    return status, [tuple(line.split(b": ", 1)) for line in lines]


def values(head: bytes, name: bytes) -> list[bytes]:
    return [v for n, v in split_head(head)[1] if n.lower() == name.lower()]


def respond(method="GET", version=HTTP11, keep_alive=True, status=200, headers=(), body=(),
            body_size=None, server=b""):
    """Run a whole response through a writer: (writer, head bytes, body bytes)."""
    w = ResponseWriter(method, version, keep_alive, server)
    head = w.head(status, "Reason", list(headers), body_size)
    out = b"".join(w.body(piece) for piece in body) + w.finish()
    return w, head, out


# --- framing ---------------------------------------------------------------------------


def test_content_length_of_the_app_is_kept():
    w, head, out = respond(headers=[("Content-Length", "5")], body=[b"he", b"llo"])
    assert values(head, b"Content-Length") == [b"5"] and not values(head, b"Transfer-Encoding")
    assert out == b"hello" and w.complete and not w.truncated and w.keep_alive


def test_content_length_added_when_the_size_is_known():
    w, head, out = respond(body=[b"hello"], body_size=5)
    assert values(head, b"Content-Length") == [b"5"] and out == b"hello" and w.keep_alive


def test_repeated_equal_content_length_sent_once():
    _, head, _ = respond(headers=[("Content-Length", "2"), ("content-length", "2")], body=[b"hi"])
    assert values(head, b"Content-Length") == [b"2"]


@pytest.mark.parametrize("value", ["abc", "-1", "+1", "5, 5", " 5", "1.0", "\u0661"])
def test_invalid_content_length_from_the_app(value):
    with pytest.raises(ResponseHeaderError) as err:
        respond(headers=[("Content-Length", value)])
    assert err.value.status == 500


def test_conflicting_content_lengths_from_the_app():
    with pytest.raises(ResponseHeaderError):
        respond(headers=[("Content-Length", "2"), ("Content-Length", "3")])


def test_longer_body_is_truncated():
    w = ResponseWriter("GET", HTTP11, True)
    w.head(200, "OK", [("Content-Length", "5")])
    assert w.body(b"hel") == b"hel" and not w.truncated
    assert w.body(b"lo world") == b"lo" and w.truncated
    assert w.body(b"more") == b""
    assert w.finish() == b"" and w.complete and w.keep_alive


def test_shorter_body_closes_the_connection():
    w = ResponseWriter("GET", HTTP11, True)
    w.head(200, "OK", [("Content-Length", "5")])
    w.body(b"hel")
    assert not w.complete and w.keep_alive  # not decided before the end
    assert w.finish() == b""
    assert not w.complete and not w.keep_alive


def test_chunked_for_http11_without_length():
    w, head, out = respond(body=[b"hello", b"", b" world!"])
    assert values(head, b"Transfer-Encoding") == [b"chunked"] and not values(head, b"Content-Length")
    assert out == b"5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n"  # an empty piece is not a last-chunk
    assert w.chunked and w.keep_alive


def test_pieces_are_framed_as_they_are():
    """pieces(): the very objects, one chunk for them all when chunked, as they are within a
    declared length; joined and cut past it; none for a bodiless response."""
    parts = [b"a" * 10, b"b" * 6]
    w = ResponseWriter("GET", HTTP11, True)
    w.head(200, "OK", [])
    framed = w.pieces(parts, 16)
    assert framed == [b"10\r\n", *parts, b"\r\n"] and all(a is b for a, b in zip(framed[1:], parts))
    assert w.sent == 16 and w.pieces([], 0) == []
    w = ResponseWriter("GET", HTTP11, True)
    w.head(200, "OK", [("Content-Length", "20")])
    framed = w.pieces(parts, 16)
    assert framed == parts and all(a is b for a, b in zip(framed, parts)) and not w.truncated
    assert w.pieces(parts, 16) == [b"aaaa"] and w.truncated and w.sent == 20
    w = ResponseWriter("HEAD", HTTP11, True)
    w.head(200, "OK", [])
    assert w.pieces(parts, 16) == [] and w.sent == 0


def test_empty_chunked_body():
    _, _, out = respond(body=[])
    assert out == b"0\r\n\r\n"


def test_http10_without_length_closes():
    w, head, out = respond(version=HTTP10, keep_alive=True, body=[b"hello", b" world"])
    assert not values(head, b"Transfer-Encoding") and not values(head, b"Content-Length")
    assert values(head, b"Connection") == [b"close"]
    assert out == b"hello world" and not w.keep_alive


@pytest.mark.parametrize("method, status", [
    ("HEAD", 200), ("HEAD", 404), ("GET", 100), ("GET", 101), ("GET", 103), ("GET", 204), ("GET", 304),
    ("POST", 204),
])
def test_no_body_and_no_chunking(method, status):
    w, head, out = respond(method=method, status=status, body=[b"ignored"])
    assert not values(head, b"Transfer-Encoding") and not values(head, b"Content-Length")
    assert out == b"" and w.no_body and not w.chunked and w.complete and w.keep_alive


@pytest.mark.parametrize("method, status", [("HEAD", 200), ("GET", 304)])
def test_bodiless_response_keeps_the_apps_content_length(method, status):
    """HEAD and 304 may announce the length the body would have (RFC 9110 s8.6)."""
    w, head, out = respond(method=method, status=status, headers=[("Content-Length", "42")], body=[b"x"])
    assert values(head, b"Content-Length") == [b"42"] and out == b"" and w.complete and w.keep_alive


@pytest.mark.parametrize("status", [100, 204])
def test_no_content_length_on_1xx_and_204(status):
    """RFC 9110 s8.6: a server MUST NOT send Content-Length in a 1xx or 204 response."""
    _, head, _ = respond(status=status, headers=[("Content-Length", "0")])
    assert not values(head, b"Content-Length")


def test_known_size_not_announced_for_head():
    _, head, _ = respond(method="HEAD", body_size=5)
    assert not values(head, b"Content-Length")


# --- Connection, Server, Date ---------------------------------------------------------------

@pytest.mark.parametrize("version, keep_alive, connection", [
    (HTTP11, True, []),
    (HTTP11, False, [b"close"]),
    (HTTP10, True, [b"keep-alive"]),
    (HTTP10, False, [b"close"]),
])
def test_connection_header(version, keep_alive, connection):
    w, head, _ = respond(version=version, keep_alive=keep_alive, body_size=0)
    assert values(head, b"Connection") == connection and w.keep_alive is keep_alive


def test_status_line_is_http11():
    _, head, _ = respond(version=HTTP10, status=404, body_size=0)
    assert split_head(head)[0] == b"HTTP/1.1 404 Reason"


def test_server_and_date_added_once_and_the_apps_ignored():
    headers = [("Server", "app/1.0"), ("Date", "yesterday"), ("X-A", "1"), ("date", "again"), ("SERVER", "x")]
    _, head, _ = respond(headers=headers, body_size=0, server=b"asyncworker")
    assert values(head, b"Server") == [b"asyncworker"]
    assert values(head, b"Date") == [http_date()]
    assert values(head, b"X-A") == [b"1"]


def test_no_server_header_when_empty():
    _, head, _ = respond(headers=[("Server", "app/1.0")], body_size=0, server=b"")
    assert values(head, b"Server") == [] and len(values(head, b"Date")) == 1


def test_app_headers_kept_in_order_with_their_case():
    headers = [("Set-Cookie", "a=1"), ("X-Thing", "v\tw"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")]
    _, head, _ = respond(headers=headers, body_size=0)
    assert split_head(head)[1][:4] == [(n.encode(), v.encode()) for n, v in headers]


# --- header and status checks ------------------------------------------------------------

BAD_HEADERS = [
    ("X-A\r\nX-B", "1"),
    ("X-A\n", "1"),
    ("X-A\x00", "1"),
    ("X-A", "1\r\nSet-Cookie: evil=1"),
    ("X-A", "1\rX"),
    ("X-A", "1\nX"),
    ("X-A", "1\x00"),
    ("X-A", "1\x7f"),
    ("X-A", "\x1b[0m"),
    ("X A", "1"),
    ("X:A", "1"),
    ("", "1"),
    ("X-\u00e9", "1"),
    (b"X-A", "1"),
    ("X-A", b"1"),
    ("X-A", 1),
    (None, "1"),
]


@pytest.mark.parametrize("name, value", BAD_HEADERS)
def test_check_header_refuses(name, value):
    with pytest.raises(ResponseHeaderError) as err:
        check_header(name, value)
    assert err.value.status == 500


@pytest.mark.parametrize("name, value", BAD_HEADERS)
def test_head_refuses_bad_headers(name, value):
    with pytest.raises(ResponseHeaderError):
        respond(headers=[("X-Ok", "1"), (name, value)])


@pytest.mark.parametrize("name, value", [
    ("X-A", ""), ("X-A", "a\tb"), ("X-A", "caf\u00e9"), ("!#$%&'*+-.^_`|~", "v"), ("X-A", " padded ")])
def test_check_header_accepts(name, value):
    check_header(name, value)


@pytest.mark.parametrize("name", sorted(HOP_BY_HOP) + ["CONNECTION", "Transfer-Encoding", "Keep-Alive"])
def test_hop_by_hop_headers_refused(name):
    with pytest.raises(ResponseHeaderError) as err:
        respond(headers=[(name, "x")])
    assert err.value.status == 500


@pytest.mark.parametrize("status, expected", [
    ("200 OK", (200, "OK")),
    ("404 Not Found", (404, "Not Found")),
    ("200 ", (200, "")),
    ("599 Caf\u00e9\tx", (599, "Caf\u00e9\tx")),
    ("100 Continue", (100, "Continue")),
])
def test_parse_status(status, expected):
    assert parse_status(status) == expected


@pytest.mark.parametrize("status", [
    "200", "200OK", "20 OK", "2000 OK", "099 Low", " 200 OK", "200\tOK", "abc OK",
    "200 OK\r\nX-Evil: 1", "200 OK\n", "200 O\x00K", "200 OK\x7f", b"200 OK", 200, None,
    "200 \u2713 fine",  # beyond latin-1: cannot be written
])
def test_parse_status_refuses(status):
    with pytest.raises(ResponseHeaderError) as err:
        parse_status(status)
    assert err.value.status == 500


# --- Date --------------------------------------------------------------------------------

def test_http_date_cached_within_a_second(monkeypatch):
    now = [1_000_000.1]
    monkeypatch.setattr(writer_module, "time", SimpleNamespace(time=lambda: now[0]))
    first = http_date()
    now[0] = 1_000_000.9
    assert http_date() is first
    assert first == b"Mon, 12 Jan 1970 13:46:40 GMT"
    now[0] = 1_000_001.0
    second = http_date()
    assert second is not first and second == b"Mon, 12 Jan 1970 13:46:41 GMT"


def test_http_date_format():
    date = http_date()
    assert len(date) == 29 and date.endswith(b" GMT") and date[3:5] == b", "


# --- error responses -----------------------------------------------------------------------

@pytest.mark.parametrize("close", [True, False])
def test_error_response(close):
    raw = error_response(413, "Payload Too Large", "Request body too large", b"asyncworker", close,
                         headers=[("Allow", "GET")])
    head, _, body = raw.partition(b"\r\n\r\n")
    status, fields = split_head(head + b"\r\n\r\n")
    assert status == b"HTTP/1.1 413 Payload Too Large"
    assert body == b"Request body too large\n"
    assert values(head + b"\r\n\r\n", b"Content-Length") == [str(len(body)).encode()]
    assert values(head + b"\r\n\r\n", b"Content-Type") == [b"text/plain; charset=utf-8"]
    assert values(head + b"\r\n\r\n", b"Allow") == [b"GET"]
    assert values(head + b"\r\n\r\n", b"Server") == [b"asyncworker"]
    assert values(head + b"\r\n\r\n", b"Connection") == ([b"close"] if close else [])


def test_error_response_utf8_message_length():
    raw = error_response(400, "Bad Request", "caf\u00e9", b"", True)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == "caf\u00e9\n".encode() and values(head + b"\r\n\r\n", b"Content-Length") == [b"6"]
