"""The checks of an HTTP/2 request's header block (server/http2/fields.py, request.py),
made in one pass instead of by h2: every rule on its own, and, on generated blocks, every
block h2's own validation refuses is refused here too (the rules here are h2's or stricter)."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2_client import H2Client
from h2_support import h2_server
from server.http2.fields import BadHead, Malformed, check_trailers
from server.http2.request import MAX_KEPT_HEAD_SIZE, MAX_KEPT_HEADS, KeptHeads, request_head
from server.protocol.limits import Limits

h2_utilities = pytest.importorskip("h2.utilities", reason="HTTP/2 needs the h2 package (the http2 extra)")

LIMITS = Limits()
BASE = [(b":method", b"GET"), (b":path", b"/a?b=1"), (b":scheme", b"https"), (b":authority", b"example.com")]


def head_of(fields, ended=True):
    return request_head(fields, LIMITS, ended)


def test_a_well_formed_block_is_the_request():
    head = head_of(BASE + [(b"accept", b"*/*"), (b"cookie", b"a=1"), (b"x-empty", b""), (b"cookie", b"b=2"),
                           (b"user-agent", b"curl/8 (x86_64)\tok")])
    assert (head.method, head.target, head.path, head.query) == ("GET", "/a?b=1", "/a", "b=1")
    assert head.headers["Host"] == "example.com"
    assert head.headers["Cookie"] == "a=1; b=2"
    assert head.headers["X-Empty"] == ""


@pytest.mark.parametrize("extra", [
    (b"X-Upper", b"1"),  # uppercase
    (b"bad name", b"1"),  # space
    (b"bad:name", b"1"),  # a colon past the first byte
    (b"", b"1"),  # empty
    (b"na\xe9me", b"1"),  # not ASCII
    (b"x(y)", b"1"),  # not a token (h2 allows it: stricter here, as the HTTP/1.1 parser)
    (b"x", b" lead"), (b"x", b"trail\t"),  # blanks at either end
    (b"x", b"a\nb"), (b"a\nb", b"1"),  # a LF (the checks join the fields with one)
    (b"x", b"a\r\nb"), (b"x", b"a\x00b"), (b"x", b"a\x01b"), (b"x", b"a\x7fb"),  # control bytes
    (b"connection", b"keep-alive"), (b"keep-alive", b"5"), (b"proxy-connection", b"x"),
    (b"transfer-encoding", b"chunked"), (b"upgrade", b"h2c"), (b"te", b"gzip"),
    (b"host", b"other.example"),  # disagrees with :authority
    (b":status", b"200"), (b":custom", b"1"),  # pseudo-fields not of a request
    (b":path", b"/again"),  # a repeated pseudo-field, and after a regular one
])
def test_each_malformed_field_is_refused_as_malformed(extra):
    with pytest.raises(Malformed) as caught:
        head_of(BASE + [(b"accept", b"*/*"), extra])
    assert caught.value.status == 400 and caught.value.reset == "PROTOCOL_ERROR"
    assert caught.value.message.startswith("Malformed request: ")


@pytest.mark.parametrize("fields", [
    [(b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")],  # no :method
    [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x")],  # no :path
    [(b":method", b"GET"), (b":path", b""), (b":scheme", b"http"), (b":authority", b"x")],  # empty :path
    [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"x")],  # no :scheme
    [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http")],  # neither :authority nor host
    [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":protocol", b"websocket"),
     (b":authority", b"x")],  # :protocol without CONNECT
    BASE + [(b"host", b"example.com"), (b"host", b"example.com")],  # two hosts
    [(b"accept", b"*/*")] + BASE,  # pseudo-fields after a regular one
])
def test_missing_or_misplaced_pseudo_fields_are_malformed(fields):
    with pytest.raises(Malformed):
        head_of(fields)


def test_host_alone_or_equal_to_authority_is_accepted():
    assert head_of(BASE[:3] + [(b"host", b"h.example")]).headers["Host"] == "h.example"
    assert head_of(BASE + [(b"host", b"example.com")]).headers.getall("Host") == ["example.com"]
    assert head_of(BASE + [(b"te", b"Trailers")]).headers["TE"] == "Trailers"


def test_connect_is_refused_with_405_not_as_malformed():
    with pytest.raises(BadHead) as caught:
        head_of([(b":method", b"CONNECT"), (b":authority", b"x:443")])
    assert caught.value.status == 405 and not isinstance(caught.value, Malformed)


@pytest.mark.parametrize("fields", [[(b":path", b"/")], [(b"X-Up", b"1")], [(b"connection", b"close")],
                                    [(b"x", b"a\nb")], [(b"x", b" y")]])
def test_malformed_trailers_are_refused(fields):
    with pytest.raises(Malformed):
        check_trailers([(b"x-ok", b"1")] + fields)


def test_well_formed_trailers_pass():
    check_trailers([(b"x-checksum", b"abc"), (b"grpc-status", b"0")])
    check_trailers([])


NAMES = st.sampled_from([b":method", b":path", b":scheme", b":authority", b":status", b":protocol", b"host",
                         b"accept", b"X-Up", b"te", b"connection", b"cookie", b"a b", b"", b"x:y", b"ok-name"])
VALUES = st.sampled_from([b"GET", b"/", b"", b"http", b"x", b"trailers", b"gzip", b" x", b"x\t", b"a\nb",
                          b"a\x00", b"CONNECT", b"v a l"])


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES), max_size=8))
def test_every_block_h2_refuses_is_refused_here(fields):
    flags = h2_utilities.HeaderValidationFlags(is_client=False, is_trailer=False, is_response_header=False,
                                               is_push_promise=False)
    try:
        list(h2_utilities.validate_headers(fields, flags))
    except Exception:  # h2's ProtocolError: malformed for h2
        h2_refuses = True
    else:
        h2_refuses = False
    if h2_refuses:
        with pytest.raises(BadHead):
            head_of(fields)


# -- the heads a connection keeps -----------------------------------------------------------------

def same_head(a, b) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in a.__dataclass_fields__)


def test_a_head_again_is_the_same_head_with_fields_of_its_own():
    kept = KeptHeads(LIMITS)
    fields = BASE + [(b"content-length", b"5"), (b"cookie", b"a=1")]
    first, _ = kept.head(fields, ended=False)
    assert same_head(first, head_of(fields, ended=False))
    first.headers["X-Added"] = "by the app"  # (an app may change the fields it was given)
    first.raw_headers.append((b"x-added", b"1"))
    again, _ = kept.head(list(fields), ended=False)
    assert same_head(again, head_of(fields, ended=False))
    ended, _ = kept.head(fields, ended=True)  # (no body follows: its own has_body)
    assert same_head(ended, head_of(fields, ended=True)) and not ended.has_body


def test_whether_a_kept_head_forwards_is_asked_once():
    asked = []

    def forwards(headers):
        asked.append(dict(headers))
        return "X-Forwarded-For" in headers

    kept = KeptHeads(LIMITS, forwards)
    plain, forwarded = BASE, BASE + [(b"x-forwarded-for", b"203.0.113.9")]
    assert [kept.head(f, True)[1] for f in (plain, forwarded, plain, forwarded)] == [False, True, False, True]
    assert len(asked) == 2
    assert KeptHeads(LIMITS).head(plain, True)[1] is None  # (no policy)
    long = BASE + [(b"x-long", b"v" * MAX_KEPT_HEAD_SIZE)]
    assert kept.head(long, True)[1] is None  # (not kept: the stream asks)


def test_a_malformed_head_is_refused_every_time():
    kept = KeptHeads(LIMITS)
    for _ in range(3):
        with pytest.raises(Malformed):
            kept.head(BASE + [(b"connection", b"close")], ended=True)
    assert not kept._heads


def test_the_kept_heads_are_bounded():
    kept = KeptHeads(LIMITS)
    most = 0
    for i in range(3 * MAX_KEPT_HEADS):
        kept.head(BASE + [(b"x-n", b"%d" % i)], ended=True)
        most = max(most, len(kept._heads))
    assert most == MAX_KEPT_HEADS
    long = BASE + [(b"x-long", b"v" * MAX_KEPT_HEAD_SIZE)]
    kept.head(long, ended=True)
    assert tuple(long) not in kept._heads


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES), max_size=8), st.booleans())
def test_a_kept_head_is_what_reading_it_gives(fields, ended):
    kept = KeptHeads(LIMITS)
    try:
        expected = head_of(fields, ended)
    except BadHead as exc:
        for _ in range(2):
            with pytest.raises(type(exc)):
                kept.head(fields, ended)
        return
    for _ in range(2):
        assert same_head(kept.head(fields, ended)[0], expected)


def get_one(kind: str, path: str):
    """``(status, body, fields)`` of one GET to a ``kind`` app over HTTP/2."""
    async def one(port):
        client = await H2Client.connect(port)
        result = await client.request("GET", path)
        await client.close()
        return result

    with h2_server(kind) as server:
        return asyncio.run(one(server.port))


def test_response_values_lose_their_surrounding_blanks():
    """HTTP/1.1 allows them; in HTTP/2 they make the response malformed (RFC 9113 s8.2.1), and a
    client that checks (h2's, here) drops the connection."""
    status, body, headers = get_one("wsgi", "/padded")
    assert (status, body, dict(headers)[b"x-padded"]) == (200, b"ok", b"padded")


def test_response_field_named_by_an_istr_is_sent():
    """aiohttp's header constants (and a native app's copies of request field names) are
    multidict's istr: a str, sent as one, and replaced as one where the server sets the field."""
    status, body, headers = get_one("native", "/named")
    assert (status, body, dict(headers).get(b"x-named")) == (200, b"ok", b"yes")
    assert [name for name, _ in headers].count(b"date") == 1
