"""The compiled shortcut for a whole common head (``plainhead.request_head``, _chead.c).

It has no Python twin: the parser's general path (``plain_head``, ``simple_head``, the
settling of headreader.py and host.py) is its reference. Whatever head it answers, the
general path, in pure Python, must give an equal head; whatever it declines (None), the
general path takes, so a head it should not answer is only slower, never different.
Checked here on hand-written heads, on generated ones, and through ``feed``.
"""

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import assert_no_leak
from server.protocol import host as host_module
from server.protocol.errors import HttpError
from server.protocol.events import EndOfMessage, RequestHead
from server.protocol.host import VALID_HOSTS, valid_authority
from server.protocol.limits import Limits
from server.protocol.parser import _NEEDS_CHECKS as NEEDS_CHECKS
from server.protocol.parser import SPECIAL_HOST, RequestParser, plain_head_py, request_head

pytestmark = pytest.mark.skipif(request_head is None, reason="the compiled parser is not in use "
                                                             "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
LIMITS = (4094, 8190, 100)  # request_line, field_size, fields: the defaults of Limits


class GeneralParser(RequestParser):
    """The parser without any compiled part: the reference."""
    _plain_head = staticmethod(plain_head_py)
    _request_head = None


def shortcut(data: bytes, limits=LIMITS, valid=None):
    return request_head(data, data.find(b"\r\n\r\n"), limits, VALID_HOSTS if valid is None else valid)


def general(data: bytes):
    """The general path's head of ``data`` (a head and its empty line), or its error status."""
    try:
        return GeneralParser()._parse_plain_head(data[:data.find(b"\r\n\r\n")])
    except HttpError as exc:
        return exc.status


def fields_of(head: RequestHead) -> list:
    return [getattr(head, name) for name in RequestHead.__slots__]


def known(*hosts: str) -> None:
    for value in hosts:
        assert valid_authority(value)  # (remembered in VALID_HOSTS)


ANSWERED = {
    "wrk": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "query": b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAccept: */*\r\n\r\n",
    "browser keep-alive": (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: Mozilla/5.0\r\n"
                           b"Cookie: a=1; b=2\r\nConnection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"),
    "Keep-Alive": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: Keep-Alive\r\n\r\n",
    "nginx close": b"GET / HTTP/1.0\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n\r\n",
    "Close 1.1": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: Close\r\n\r\n",
    "1.0 keep-alive": b"GET / HTTP/1.0\r\nHost: 127.0.0.1:8000\r\nConnection: keep-alive\r\n\r\n",
    "1.0 plain": b"HEAD / HTTP/1.0\r\nhost: 127.0.0.1:8000\r\n\r\n",
    "form": (b"POST /form HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/x-www-form-urlencoded"
             b"\r\nContent-Length: 4096\r\n\r\n"),
    "length 0": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 0\r\n\r\n",
    "length 000": b"PUT / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\ncontent-length: 000\r\n\r\n",
    "18 digits": b"PUT / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 999999999999999999\r\n\r\n",
    "upgrade, no connection": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n\r\n",
    "latin-1 value": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nX-Name: caf\xe9\r\n\r\n",
    "empty host": b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
}


@pytest.mark.parametrize("data", list(ANSWERED.values()), ids=list(ANSWERED))
def test_common_heads_are_answered_as_the_general_path_answers_them(data):
    known("127.0.0.1:8000", "")
    head = shortcut(data)
    assert type(head) is RequestHead
    want = general(data)
    assert fields_of(head) == fields_of(want)
    assert [type(v) for v in fields_of(head)] == [type(v) for v in fields_of(want)]


def test_what_the_settled_fields_say():
    known("127.0.0.1:8000")
    form = shortcut(ANSWERED["form"])
    assert (form.content_length, form.has_body, form.keep_alive) == (4096, True, True)
    assert (form.method, form.path, form.version) == ("POST", "/form", (1, 1))
    close = shortcut(ANSWERED["nginx close"])
    assert (close.keep_alive, close.has_body, close.version) == (False, False, (1, 0))
    assert shortcut(ANSWERED["1.0 keep-alive"]).keep_alive is True
    assert shortcut(ANSWERED["length 000"]).content_length == 0
    assert shortcut(ANSWERED["18 digits"]).content_length == 10**18 - 1


DECLINED = {
    "host never checked": b"GET / HTTP/1.1\r\nHost: new.example\r\n\r\n",
    "no host": b"GET / HTTP/1.0\r\n\r\n",
    "two hosts": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "invalid host": b"GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n",
    "chunked": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nTransfer-Encoding: chunked\r\n\r\n",
    "expect": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    "two lengths": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "length list": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 5, 5\r\n\r\n",
    "length sign": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: +5\r\n\r\n",
    "length empty": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length:\r\n\r\n",
    "19 digits": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 1000000000000000000\r\n\r\n",
    "non-ascii digit": b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: \xb2\r\n\r\n",
    "connection upgrade": (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: Upgrade\r\n"
                           b"Upgrade: websocket\r\n\r\n"),
    "connection list": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: keep-alive, close\r\n\r\n",
    "connection KEEP-ALIVE": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: KEEP-ALIVE\r\n\r\n",
    "two connections": (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n"
                        b"Connection: close\r\n\r\n"),
    "two content types": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
    "absolute-form": b"GET http://127.0.0.1:8000/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nX: a\r\n b\r\n\r\n",
    "HTTP/1.2": b"GET / HTTP/1.2\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "CONNECT": b"CONNECT / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
}


@pytest.mark.parametrize("data", list(DECLINED.values()), ids=list(DECLINED))
def test_heads_it_does_not_settle_are_declined(data):
    known("127.0.0.1:8000")
    VALID_HOSTS.pop("new.example", None)
    assert shortcut(data) is None


def test_a_host_is_answered_once_the_general_path_has_checked_it():
    data = DECLINED["host never checked"]
    VALID_HOSTS.pop("new.example", None)
    assert shortcut(data) is None
    parser = RequestParser()
    head, end = parser.feed(data)  # (the general path: it checks the Host and remembers it)
    assert head.headers["Host"] == "new.example" and type(end) is EndOfMessage
    assert fields_of(shortcut(data)) == fields_of(head)


def test_the_limits_hold_at_their_bounds():
    """Each limit at its bound answers, one past it declines, as ``plain_head`` does (the
    field size bounds all the field lines at once there: the general path then checks each)."""
    known("h")
    line = b"GET /" + b"a" * 20 + b" HTTP/1.1"  # 34 bytes
    fields = b"\r\nHost: h\r\nX-A: " + b"v" * 20  # 36 bytes with their CRLFs
    data = line + fields + b"\r\n\r\n"
    for limits, answered in [((34, 36, 2), True), ((33, 36, 2), False), ((34, 35, 2), False), ((34, 36, 1), False)]:
        assert (shortcut(data, limits) is not None) == answered, limits
        assert (plain_head_py(data[:-4], *limits) is not None) == answered, limits
    with pytest.raises(HttpError) as refused:
        RequestParser(Limits(request_line=33)).feed(data)
    assert refused.value.status == 414
    with pytest.raises(HttpError) as refused:
        RequestParser(Limits(fields=1)).feed(data)
    assert refused.value.status == 431


def test_only_the_head_before_end_is_read():
    known("127.0.0.1:8000")
    data = ANSWERED["form"] + b"a=1&b=2" + b"GET / HTTP/1.1\r\n"
    end = data.find(b"\r\n\r\n")
    head = request_head(data, end, LIMITS, VALID_HOSTS)
    assert fields_of(head) == fields_of(general(ANSWERED["form"]))


@pytest.mark.parametrize("args, error", [
    ((b"GET / HTTP/1.1", 14, LIMITS), TypeError),
    (("GET / HTTP/1.1\r\nHost: h", 21, LIMITS, {}), TypeError),
    ((b"GET / HTTP/1.1\r\nHost: h", 21, list(LIMITS), {}), TypeError),
    ((b"GET / HTTP/1.1\r\nHost: h", 21, (1, 2), {}), TypeError),
    ((b"GET / HTTP/1.1\r\nHost: h", 21, LIMITS, ["h"]), TypeError),
    ((b"GET / HTTP/1.1\r\nHost: h", 21.0, LIMITS, {}), TypeError),
    ((b"GET / HTTP/1.1\r\nHost: h", 24, LIMITS, {}), ValueError),
    ((b"GET / HTTP/1.1\r\nHost: h", -1, LIMITS, {}), ValueError),
])
def test_bad_arguments_raise(args, error):
    with pytest.raises(error):
        request_head(*args)


def test_a_declined_head_and_an_answered_one_leak_nothing():
    known("127.0.0.1:8000")
    for data in (ANSWERED["browser keep-alive"], ANSWERED["form"], DECLINED["connection list"],
                 DECLINED["host never checked"]):
        assert_no_leak(lambda n: [shortcut(data) for _ in range(n)], shared=(data, VALID_HOSTS))

    def refused(n):
        for _ in range(n):
            with pytest.raises(TypeError):
                request_head(b"x", 1, LIMITS, [])

    assert_no_leak(refused)


# --- generated heads -------------------------------------------------------------------------

NAMES = ["Host", "host", "HOST", "Content-Length", "content-length", "Connection", "connection", "Expect",
         "Transfer-Encoding", "Upgrade", "Content-Type", "X-Forwarded-For", "Cookie", "A"]
VALUES = ["127.0.0.1:8000", "h", "", "a:b:c", "[::1]:80", "0", "5", "007", "+5", "5,5", " 5", "1" * 18, "1" * 19,
          "keep-alive", "Keep-Alive", "KEEP-ALIVE", "close", "Close", "upgrade", "keep-alive, close",
          "100-continue", "chunked", "websocket", "caf\xe9"]


@st.composite
def heads(draw):
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "PUT", "CONNECT", "X"]))
    target = draw(st.sampled_from(["/", "/a?b=1", "/%41", "*", "http://h/", "/a b"]))
    version = draw(st.sampled_from(["1.1", "1.0", "1.2"]))
    lines = [f"{method} {target} HTTP/{version}"]
    for _ in range(draw(st.integers(0, 5))):
        lines.append(draw(st.sampled_from(NAMES)) + ":" + draw(st.sampled_from(["", " "]))
                     + draw(st.sampled_from(VALUES)))
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=heads(), checked=st.booleans())
def test_generated_heads_agree_with_the_general_path(data, checked):
    """Answered: the same head as the general path's (which must accept it); declined: the
    general path decides. Hosts are in the cache of checked values or not."""
    VALID_HOSTS.clear()
    if checked:
        known("127.0.0.1:8000", "h", "", "[::1]:80")
    head = shortcut(data)
    checked_before = dict(VALID_HOSTS)
    want = general(data)
    if head is not None:
        assert type(want) is RequestHead, (data, want)
        assert fields_of(head) == fields_of(want), data
    plain = plain_head_py(data[:-4], *LIMITS)
    if plain is not None and plain[7] & NEEDS_CHECKS == SPECIAL_HOST and type(want) is RequestHead:
        # One Host, no field that bears on framing: answered once its value is known valid.
        assert (head is not None) == (want.headers["Host"] in checked_before), data


@settings(max_examples=500, deadline=None)
@given(data=heads(), body=st.binary(max_size=12))
def test_feeding_gives_the_events_of_the_general_parser(data, body):
    """Through ``feed``, with or without bytes after the head: the same events, or the same error."""
    known("127.0.0.1:8000", "h")

    def events(parser_class):
        try:
            return [fields_of(e) if type(e) is RequestHead else (type(e).__name__, bytes(getattr(e, "data", b"")))
                    for e in parser_class().feed(data + body)]
        except HttpError as exc:
            return exc.status

    assert events(RequestParser) == events(GeneralParser)


def test_the_parser_uses_it_unless_pure_python_is_asked():
    assert RequestParser._request_head is request_head
    code = "from server.protocol.parser import RequestParser as P; assert P._request_head is None"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "ASYNCWORKER_PURE_PYTHON": "1"})
    assert host_module.VALID_HOSTS is VALID_HOSTS  # (the one dict both read)
