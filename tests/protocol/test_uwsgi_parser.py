"""The uwsgi parser: packets in, the HTTP parser's events out; every malformed packet and
every limit crossed refused with its status; the same events however the bytes are split."""

import struct

import pytest

from server.protocol.errors import HttpError
from server.protocol.events import Data, EndOfMessage, RequestHead
from server.protocol.limits import Limits
from server.protocol.parser import DONE, ERROR, HEAD
from server.protocol.uwsgi import CGI_BYTES, UwsgiParser

BASE = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/p?q=1"), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("HTTP_HOST", "example.com")]


def var(key: bytes, value: bytes) -> bytes:
    return struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value


def packet(uwsgi_vars, modifier1: int = 0, modifier2: int = 0) -> bytes:
    data = b"".join(var(k.encode("latin-1"), v.encode("latin-1")) for k, v in uwsgi_vars)
    return raw_packet(data, modifier1, modifier2)


def raw_packet(data: bytes, modifier1: int = 0, modifier2: int = 0) -> bytes:
    return struct.pack("<BHB", modifier1, len(data), modifier2) + data


def replaced(**changed) -> list:
    """BASE with some vars changed (None: removed) or added."""
    out = [(k, changed.pop(k, v)) for k, v in BASE]
    return [(k, v) for k, v in out + list(changed.items()) if v is not None]


def events_of(data: bytes, limits: Limits = Limits()) -> list:
    return UwsgiParser(limits).feed(data)


def head_of(uwsgi_vars) -> RequestHead:
    events = events_of(packet(uwsgi_vars))
    assert type(events[0]) is RequestHead
    return events[0]


# -- packets → events -------------------------------------------------------------

HEADS = [
    # (vars, method, target, path, query, version)
    (BASE, "GET", "/p?q=1", "/p", "q=1", (1, 1)),
    (replaced(REQUEST_URI=None, PATH_INFO="/a b%", QUERY_STRING="x=1"), "GET", "/a%20b%25?x=1", "/a%20b%25", "x=1",
     (1, 1)),
    (replaced(REQUEST_URI=None), "GET", "/", "/", "", (1, 1)),
    (replaced(REQUEST_METHOD=None), "GET", "/p?q=1", "/p", "q=1", (1, 1)),  # gunicorn's default method
    (replaced(SERVER_PROTOCOL="HTTP/1.0", HTTP_HOST=None), "GET", "/p?q=1", "/p", "q=1", (1, 0)),
    (replaced(SERVER_PROTOCOL="HTTP/2.0"), "GET", "/p?q=1", "/p", "q=1", (1, 1)),  # nginx's HTTP/2 client
    (replaced(SERVER_PROTOCOL=None), "GET", "/p?q=1", "/p", "q=1", (1, 1)),
    (replaced(REQUEST_METHOD="DELETE", REQUEST_URI="http://example.com/x?y"), "DELETE", "http://example.com/x?y",
     "/x", "y", (1, 1)),
    (replaced(REQUEST_METHOD="OPTIONS", REQUEST_URI="*"), "OPTIONS", "*", "*", "", (1, 1)),
]


@pytest.mark.parametrize("uwsgi_vars, method, target, path, query, version", HEADS)
def test_the_vars_make_the_request_line(uwsgi_vars, method, target, path, query, version):
    events = events_of(packet(uwsgi_vars))
    head = events[0]
    assert (head.method, head.target, head.path, head.query, head.version) == (method, target, path, query, version)
    assert events[1:] == [] or type(events[1]) is EndOfMessage


def test_http_vars_become_header_fields_and_others_are_not_fields():
    head = head_of(replaced(HTTP_X_TRACE_ID="abc", HTTP_ACCEPT="*/*", REMOTE_ADDR="1.2.3.4", DOCUMENT_ROOT="/srv"))
    assert head.headers["X-Trace-Id"] == "abc" and head.headers["Accept"] == "*/*"
    assert "Remote-Addr" not in head.headers and "Document-Root" not in head.headers
    assert (b"X-TRACE-ID", b"abc") in head.raw_headers


def test_a_repeated_http_var_is_a_repeated_field():
    head = head_of(replaced(HTTP_COOKIE="a=1") + [("HTTP_COOKIE", "b=2")])
    assert head.headers.getall("Cookie") == ["a=1", "b=2"]


def test_content_length_and_type_vars_are_the_body_and_its_type():
    data = packet(replaced(REQUEST_METHOD="POST", CONTENT_LENGTH="5", CONTENT_TYPE="text/plain",
                           HTTP_CONTENT_LENGTH="5", HTTP_TRANSFER_ENCODING="chunked"))
    events = events_of(data + b"hello")
    head = events[0]
    assert (head.content_length, head.chunked, head.has_body) == (5, False, True)
    assert head.headers.getall("Content-Length") == ["5"] and head.headers["Content-Type"] == "text/plain"
    assert "Transfer-Encoding" not in head.headers  # the client's hop, not this one
    assert b"".join(e.data for e in events[1:-1]) == b"hello" and type(events[-1]) is EndOfMessage


def test_no_interim_response_and_no_upgrade_through_a_front_end():
    head = head_of(replaced(REQUEST_METHOD="POST", CONTENT_LENGTH="3", HTTP_EXPECT="100-continue",
                            HTTP_CONNECTION="Upgrade", HTTP_UPGRADE="websocket"))
    assert (head.expect_continue, head.upgrade) == (False, False)
    assert head.headers["Expect"] == "100-continue"  # the app still sees what the client sent


def test_empty_content_vars_mean_no_body():
    events = events_of(packet(replaced(CONTENT_LENGTH="", CONTENT_TYPE="")))
    assert events[0].has_body is False and "Content-Type" not in events[0].headers
    assert type(events[1]) is EndOfMessage


@pytest.mark.parametrize("uwsgi_vars, scheme", [
    (BASE, None), (replaced(HTTPS="on"), "https"), (replaced(HTTPS="1"), "https"), (replaced(HTTPS="off"), None),
    (replaced(**{"wsgi.url_scheme": "https"}), "https"), (replaced(**{"wsgi.url_scheme": "http"}), "http"),
])
def test_the_scheme_is_read_as_gunicorn_reads_it(uwsgi_vars, scheme):
    parser = UwsgiParser()
    parser.feed(packet(uwsgi_vars))
    assert parser.scheme == scheme


def test_the_same_events_however_the_bytes_are_split():
    data = packet(replaced(REQUEST_METHOD="PUT", CONTENT_LENGTH="6")) + b"abcdef"
    whole = events_of(data)
    parser = UwsgiParser()
    pieces = [e for i in range(len(data)) for e in parser.feed(data[i:i + 1])]
    assert whole[0].target == pieces[0].target and whole[0].headers == pieces[0].headers
    assert b"".join(e.data for e in pieces if type(e) is Data) == b"abcdef"
    assert type(pieces[-1]) is EndOfMessage and parser.state == DONE


def test_modifier2_is_ignored_and_the_parser_waits_for_the_whole_packet():
    data = packet(BASE, modifier2=7)
    parser = UwsgiParser()
    assert parser.feed(data[:-1]) == [] and parser.in_message and parser.state == HEAD
    assert type(parser.feed(data[-1:])[0]) is RequestHead


def test_bytes_after_the_request_wait_for_next_request():
    parser = UwsgiParser()
    events = parser.feed(packet(BASE) + packet(replaced(REQUEST_URI="/second")))
    assert len(events) == 2 and parser.done
    assert parser.next_request()[0].target == "/second"


# -- refused ---------------------------------------------------------------------

MALFORMED = [
    ("modifier1 not a WSGI request", packet(BASE, modifier1=5), 501),
    ("modifier1 seen in the first byte", b"\x01", 501),
    ("key size past the packet", raw_packet(var(b"REQUEST_METHOD", b"GET")[:-5] + b"\xff\x00GET"), 400),
    ("a lone byte of a key size", raw_packet(var(b"A", b"b") + b"\x01"), 400),
    ("value size missing", raw_packet(b"\x01\x00A"), 400),
    ("value past the packet", raw_packet(b"\x01\x00A\x09\x00abc"), 400),
    ("method not a token", packet(replaced(REQUEST_METHOD="GE T")), 400),
    ("empty method", packet(replaced(REQUEST_METHOD="")), 400),
    ("target with a space", packet(replaced(REQUEST_URI="/a b")), 400),
    ("target with a control", packet(replaced(REQUEST_URI="/a\x01")), 400),
    ("target not origin, absolute or *", packet(replaced(REQUEST_URI="a/b")), 400),
    ("CONNECT", packet(replaced(REQUEST_METHOD="CONNECT", REQUEST_URI="example.com:443")), 501),
    ("bad SERVER_PROTOCOL", packet(replaced(SERVER_PROTOCOL="HTTP/one")), 400),
    ("HTTP/1.1 without a host", packet(replaced(HTTP_HOST=None)), 400),
    ("two hosts", packet(BASE + [("HTTP_HOST", "other")]), 400),
    ("field value with CR LF", packet(replaced(HTTP_X_A="a\r\nX-B: b")), 400),
    ("field name not a token", packet(replaced(**{"HTTP_X:A": "a"})), 400),
    ("empty field name", packet(replaced(HTTP_="a")), 400),
    ("a request var twice", packet(BASE + [("REQUEST_METHOD", "POST")]), 400),
    ("CONTENT_LENGTH not a number", packet(replaced(CONTENT_LENGTH="5x")), 400),
    ("CONTENT_LENGTH negative", packet(replaced(CONTENT_LENGTH="-1")), 400),
    ("CONTENT_LENGTH and its header disagree", packet(replaced(CONTENT_LENGTH="5", HTTP_CONTENT_LENGTH="6")), 400),
    ("two content types", packet(replaced(CONTENT_TYPE="a/b", HTTP_CONTENT_TYPE="c/d")), 400),
    ("unknown expectation", packet(replaced(HTTP_EXPECT="magic")), 417),
    ("wsgi.url_scheme not http(s)", packet(replaced(**{"wsgi.url_scheme": "ftp"})), 400),
]


@pytest.mark.parametrize("why, data, status", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_packet_is_refused(why, data, status):
    parser = UwsgiParser()
    with pytest.raises(HttpError) as info:
        parser.feed(data)
    assert info.value.status == status
    assert parser.state == ERROR


SMALL = Limits(request_line=40, fields=3, field_size=30, body=10)
LIMITS = [
    ("request line", packet(replaced(REQUEST_URI="/" + "a" * 40)), 414),
    ("number of fields", packet(replaced(HTTP_A="1", HTTP_B="2", HTTP_C="3")), 431),
    ("field size", packet(replaced(HTTP_X_LONG="v" * 30)), 431),
    ("number of vars", packet(BASE + [(f"V{i}", "") for i in range(3 + 64)]), 431),
    ("packet bigger than a head", raw_packet(b"\x00" * (SMALL.head_size + CGI_BYTES - 3)), 431),
    ("body size", packet(replaced(REQUEST_METHOD="POST", CONTENT_LENGTH="11")), 413),
]


@pytest.mark.parametrize("why, data, status", LIMITS, ids=[m[0] for m in LIMITS])
def test_a_packet_over_a_limit_is_refused(why, data, status):
    with pytest.raises(HttpError) as info:
        events_of(data, SMALL)
    assert info.value.status == status


def test_an_oversized_packet_is_refused_on_its_size_alone():
    with pytest.raises(HttpError) as info:
        events_of(struct.pack("<BHB", 0, SMALL.head_size + CGI_BYTES - 3, 0), SMALL)
    assert info.value.status == 431


def test_at_the_limits_a_packet_is_accepted():
    at_limits = replaced(REQUEST_URI="/" + "a" * (40 - len("POST  HTTP/1.1") - 1), REQUEST_METHOD="POST",
                         HTTP_A="v" * (30 - len("A: ") - 2), CONTENT_LENGTH="10")
    events = events_of(packet(at_limits) + b"x" * 10, SMALL)
    assert events[0].content_length == 10 and type(events[-1]) is EndOfMessage


def test_an_input_cut_short_is_an_error():
    parser = UwsgiParser()
    parser.feed(packet(BASE)[:10])
    with pytest.raises(HttpError) as info:
        parser.feed_eof()
    assert info.value.status == 400
