"""The ASGI field helpers, compiled (server/protocol/_chead.c) and in Python
(server/asgi/fields.py, the reference): each case runs on both and checks the
result, types and shared objects included, equal to the reference's."""

import os
import subprocess
import sys

import pytest

from helpers import assert_no_leak
from server.asgi import fields
from server.asgi.fields import bytes_pairs_py, lower_fields_py
from server.protocol.compiled import compiled
from server.protocol.parser import RequestParser

PURE = os.environ.get("ASYNCWORKER_PURE_PYTHON") == "1"
NOT_BUILT = "the compiled helpers are not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)"
lower_fields_c = compiled("lower_fields")
bytes_pairs_c = compiled("bytes_pairs")


def both(py, c):
    return [pytest.param(py, id="py"),
            pytest.param(c, id="c", marks=pytest.mark.skipif(c is None, reason=NOT_BUILT))]


def test_the_compiled_helpers_are_in_use():
    if PURE:
        pytest.skip("ASYNCWORKER_PURE_PYTHON=1: the Python helpers are forced")
    assert fields.lower_fields is lower_fields_c is not None
    assert fields.bytes_pairs is bytes_pairs_c is not None


def test_pure_python_switch_picks_the_references():
    code = ("from server.asgi import fields as f; "
            "assert f.lower_fields is f.lower_fields_py and f.bytes_pairs is f.bytes_pairs_py")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "ASYNCWORKER_PURE_PYTHON": "1"})


# --- lower_fields: the scope's headers ------------------------------------------------

def head_fields(raw_head: bytes) -> list:
    """The raw (name, value) pairs the parser makes of a whole request head."""
    [head, _] = RequestParser().feed(raw_head)
    return head.raw_headers


LOWER_CASES = [
    [],
    [(b"Host", b"example.com")],
    [(b"host", b"example.com")],
    [(b"X-Forwarded-For", b"10.0.0.1"), (b"X-FORWARDED-FOR", b"10.0.0.2"), (b"x-forwarded-for", b"10.0.0.3")],
    [(b"Content-Type", b"text/plain"), (b"content-type", b"text/html")],  # duplicates kept, in order
    [(b"X-" + b"A" * 40, b"long name, not a known one")],
    [(b"Accept-Encoding", b"gzip"), (b"ACCEPT-ENCODING", b"br"), (b"UPGRADE-INSECURE-REQUESTS", b"1")],
    [(b"Weird_Name-1!#$%&'*+.^`|~", b"\x80\xff latin-1 \t")],
    [(b"A", b""), (b"Z", b"z")],
]


@pytest.mark.parametrize("impl", both(lower_fields_py, lower_fields_c))
@pytest.mark.parametrize("raw", LOWER_CASES)
def test_lower_fields(impl, raw):
    got = impl(raw)
    assert got == [(name.lower(), value) for name, value in raw]
    assert got == lower_fields_py(raw)
    assert type(got) is list and all(type(p) is tuple and type(p[0]) is bytes for p in got)
    assert all(got_value is value for (_, got_value), (_, value) in zip(got, raw))  # values are not copied


@pytest.mark.parametrize("impl", both(lower_fields_py, lower_fields_c))
def test_lower_fields_of_a_parsed_head(impl):
    raw = head_fields(b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\nX-Custom: c\r\naccept: */*\r\n\r\n")
    assert impl(raw) == [(b"host", b"h"), (b"user-agent", b"u"), (b"x-custom", b"c"), (b"accept", b"*/*")]


COMMON_NAMES = [
    "DNT", "Host", "Accept", "Cookie", "Referer", "Priority", "X-Real-IP", "sec-ch-ua", "Connection",
    "User-Agent", "Content-Type", "X-Request-ID", "Authorization", "Cache-Control", "If-None-Match",
    "Sec-Fetch-Dest", "sec-fetch-user", "Accept-Encoding", "Accept-Language",
    "X-Forwarded-For", "If-Modified-Since", "X-Forwarded-Proto", "sec-ch-ua-platform",
    "Upgrade-Insecure-Requests", "upgrade-insecure-requests", "Hosu", "X-Real-Ip",
]


@pytest.mark.parametrize("impl", both(lower_fields_py, lower_fields_c))
def test_lower_fields_of_common_names_parsed(impl):
    """The parser's raw names of common fields are objects it shares; each is lowered as
    its own bytes say, whichever of the shared objects it is."""
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"%s: v%d\r\n" % (name.encode(), i) for i, name in
                                             enumerate(COMMON_NAMES)) + b"\r\n"
    raw = head_fields(head)
    got = impl(raw)
    assert got == [(name.lower(), value) for name, value in raw]
    assert [name for name, _ in got] == [name.lower().encode() for name in COMMON_NAMES]


@pytest.mark.skipif(lower_fields_c is None, reason=NOT_BUILT)
def test_compiled_lower_fields_shares_names():
    """A name already in lower case is the same object; a known one lowered is one shared object."""
    name = b"x-already-lower"
    [(same, _)] = lower_fields_c([(name, b"v")])
    assert same is name
    [(a, _)] = lower_fields_c([(b"Host", b"1")])
    [(b, _)] = lower_fields_c([(b"HOST", b"2")])
    assert a == b"host" and a is b


@pytest.mark.skipif(lower_fields_c is None, reason=NOT_BUILT)
@pytest.mark.parametrize("raw", [
    ((b"Host", b"h"),),  # not a list
    [[b"Host", b"h"]],  # a pair that is not a tuple
    [(b"Host",)],
    [("Host", b"h")],  # a str name
    [(bytearray(b"Host"), b"h")],
])
def test_compiled_lower_fields_refuses_what_the_parser_never_makes(raw):
    with pytest.raises(TypeError):
        lower_fields_c(raw)


# --- bytes_pairs: the head cache's key of response headers ------------------------------

PAIRS_CASES = [
    ([], ()),
    ((), ()),
    ([(b"content-type", b"text/plain")], ((b"content-type", b"text/plain"),)),
    ([[b"content-type", b"text/plain"], (b"x-a", b"1")], ((b"content-type", b"text/plain"), (b"x-a", b"1"))),
    (((b"a", b""),), ((b"a", b""),)),
    # anything else: None (the full checks accept it or say what is wrong)
    (None, None),
    ({(b"a", b"b")}, None),
    ({b"a": b"b"}, None),
    ("headers", None),
    (b"headers", None),
    ([(b"a", memoryview(b"b"))], None),  # equal to bytes, but not bytes
    ([(memoryview(b"a"), b"b")], None),
    ([(bytearray(b"a"), b"b")], None),
    ([("a", "b")], None),
    ([(b"a", b"b", b"c")], None),
    ([(b"a",)], None),
    ([b"ab"], None),
    ([iter([b"a", b"b"])], None),
    ([(b"ok", b"1"), (b"bad", 1)], None),
]


class BytesSubclass(bytes):
    pass


class ListSubclass(list):
    pass


PAIRS_CASES += [
    ([(BytesSubclass(b"a"), b"b")], None),
    (ListSubclass([(b"a", b"b")]), None),
]


@pytest.mark.parametrize("impl", both(bytes_pairs_py, bytes_pairs_c))
@pytest.mark.parametrize("headers, want", PAIRS_CASES)
def test_bytes_pairs(impl, headers, want):
    got = impl(headers)
    assert got == want
    assert got == bytes_pairs_py(headers)
    if got is not None:
        assert type(got) is tuple and all(type(p) is tuple and len(p) == 2 for p in got)
        hash(got)  # a cache key


@pytest.mark.parametrize("impl", both(bytes_pairs_py, bytes_pairs_c))
def test_bytes_pairs_keeps_tuple_pairs(impl):
    pair = (b"content-type", b"text/plain")
    [got] = impl([pair])
    assert got is pair


@pytest.mark.skipif(bytes_pairs_c is None, reason=NOT_BUILT)
def test_compiled_bytes_pairs_takes_a_tuple_of_tuples_as_it_is():
    headers = ((b"content-type", b"text/plain"), (b"content-length", b"2"))
    assert bytes_pairs_c(headers) is headers


@pytest.mark.skipif(lower_fields_c is None or bytes_pairs_c is None, reason=NOT_BUILT)
def test_compiled_field_helpers_do_not_leak():
    raw = [(b"Host", b"h"), (b"x-lower", b"v"), (b"X-" + b"N" * 40, b"w")]
    tuples = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    lists = [[b"content-type", b"text/plain"], (b"content-length", b"2")]
    refused = [(b"content-type", b"text/plain"), [b"x", memoryview(b"y")]]
    shared = [raw[0][1], tuples[0], lists[0][0], refused[0]]

    def run(n):
        for _ in range(n):
            lower_fields_c(raw)
            bytes_pairs_c(tuples)
            bytes_pairs_c(tuple(tuples))
            bytes_pairs_c(lists)
            bytes_pairs_c(refused)

    assert_no_leak(run, shared)
