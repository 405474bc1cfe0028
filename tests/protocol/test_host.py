"""``host.py``: which Host values are ``host[:port]``, and how an absolute-form
target's authority takes the Host's place (sans-IO, through the parser)."""

import time

import pytest

from server.protocol.errors import BadRequest
from server.protocol.host import valid_authority
from server.protocol.parser import RequestParser

VALID = ["example.com", "example.com:8080", "a:", "127.0.0.1", "127.0.0.1:65535", "[::1]", "[::1]:80",
         "[2001:db8::ffff:192.0.2.1]", "", "a%20b", "x_y~z", "!$&'()*+,;="]
INVALID = ["evil.example/x?", "a:b:c", "a b", "user@host", "[::1", "[::1]x", "[::1]:b", "[zz]", "[]",
           ":80", "a%2", "a%zz", "host:123456", "host:-1", "h\\x", "h#x", "h?x", "[v1.x]"]


@pytest.mark.parametrize("value", VALID)
def test_valid(value):
    assert valid_authority(value)


@pytest.mark.parametrize("value", INVALID)
def test_invalid(value):
    assert not valid_authority(value)


def parse(data: bytes):
    return RequestParser().feed(data)[0]


@pytest.mark.parametrize("host", [b"evil.example/x?", b"a:b:c"])
def test_the_parser_refuses_a_bad_host_of_a_plain_and_of_any_head(host):
    for extra in (b"", b"Content-Length: 0\r\nX-A: 1\r\n"):
        with pytest.raises(BadRequest, match="Invalid Host header"):
            parse(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n" + extra + b"\r\n")


def test_absolute_form_authority_replaces_the_host_in_both_header_views():
    head = parse(b"GET http://good.example:81/p?q HTTP/1.1\r\nhost: evil.example\r\nX-A: 1\r\n\r\n")
    assert head.headers.getall("Host") == ["good.example:81"]
    assert head.raw_headers == [(b"host", b"good.example:81"), (b"X-A", b"1")]
    assert (head.path, head.query) == ("/p", "q")
    head = parse(b"GET http://good.example HTTP/1.0\r\n\r\n")
    assert head.headers["Host"] == "good.example"
    assert head.raw_headers == [(b"Host", b"good.example")]


@pytest.mark.parametrize("target", [b"http:///p", b"http://:80/p", b"https://?q", b"http://[]/"])
def test_absolute_form_with_an_empty_host_is_refused(target):
    with pytest.raises(BadRequest, match="Empty host|Invalid request target"):
        parse(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")


def test_the_check_is_linear_in_the_length_of_the_value():
    """No backtracking: a long value that fails at its last character costs one pass.
    (Past the field size limit in a real head; the function itself is checked here.)"""
    for bad in ("a%2" * 100_000 + "%", "a" * 300_000 + ":8x", "[" + "1:" * 100_000 + "x]"):
        started = time.perf_counter()
        assert not valid_authority(bad)
        assert time.perf_counter() - started < 1.0


def test_valid_values_are_remembered_up_to_a_bound():
    from server.protocol import host

    names = [f"host-{i}.example" for i in range(host.CACHED + 50)]
    assert all(valid_authority(name) for name in names)
    assert 0 < len(host.VALID_HOSTS) <= host.CACHED  # emptied when full, never past the bound
    assert names[-1] in host.VALID_HOSTS
    assert not valid_authority("a:b:c") and "a:b:c" not in host.VALID_HOSTS  # refusals are not kept
