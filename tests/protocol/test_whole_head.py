"""``RequestParser.feed``'s first branch compiled (``_chead.whole_head``): a parser of exactly
RequestParser's class, waiting for a head with nothing buffered, fed one whole head alone.

Its reference is that branch in Python, which runs for any subclass: ``BranchParser`` below
is RequestParser with nothing changed but its class, so the C declines it and the Python
branch answers, with the same compiled ``request_head`` under it. The two must leave the
same events (or error) and the same parser behind, for every piece, whole head or not.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import assert_no_leak
from server.protocol import parser as parser_module
from server.protocol.errors import HttpError
from server.protocol.events import RequestHead
from server.protocol.host import VALID_HOSTS, valid_authority
from server.protocol.limits import Limits
from server.protocol.parser import BODY, DONE, ERROR, HEAD, RequestParser

whole_head = parser_module._whole_head
pytestmark = pytest.mark.skipif(whole_head is None, reason="the compiled parser is not in use "
                                                           "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
STATE = ("state", "_scan_from", "_crlfs", "_line_start", "_remaining", "_body_size", "_trailer_lines")


class BranchParser(RequestParser):
    """RequestParser, but not of its exact class: feed's first branch runs in Python."""

    __slots__ = ()


def outcome(parser_class, pieces, limits=Limits()):
    """The events (or error) of each piece fed in turn, and the parser's state after."""
    parser = parser_class(limits)
    seen = []
    for piece in pieces:
        try:
            seen.append([_event(e) for e in parser.feed(piece)])
        except HttpError as exc:
            seen.append((type(exc).__name__, exc.status, str(exc)))
            break
    return seen, [getattr(parser, name) for name in STATE], bytes(parser.buffer)


def _event(event):
    if type(event) is RequestHead:
        return [getattr(event, name) for name in RequestHead.__slots__]
    return type(event).__name__, bytes(getattr(event, "data", b"")), getattr(event, "trailers", None)


def agree(pieces, limits=Limits()):
    compiled, branch = outcome(RequestParser, pieces, limits), outcome(BranchParser, pieces, limits)
    assert compiled == branch, pieces
    return compiled


HOST = b"Host: 127.0.0.1:8000\r\n"
WHOLE = {
    "hello": b"GET / HTTP/1.1\r\n" + HOST + b"\r\n",
    "browser": (b"GET /a?b=1 HTTP/1.1\r\n" + HOST + b"User-Agent: Mozilla/5.0\r\nCookie: a=1; b=2\r\n"
                b"Connection: keep-alive\r\n\r\n"),
    "close": b"GET / HTTP/1.0\r\n" + HOST + b"Connection: close\r\n\r\n",
    "form head": b"POST /f HTTP/1.1\r\n" + HOST + b"Content-Length: 4096\r\n\r\n",
    "length 0": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 0\r\n\r\n",
    "chunked": b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n",
    "expect": b"PUT / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    "host never checked": b"GET / HTTP/1.1\r\nHost: never-seen.example\r\n\r\n",
    "upgrade": b"GET / HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "two lengths": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "bad host": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "no host": b"GET / HTTP/1.1\r\n\r\n",
    "folded": b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n b\r\n\r\n",
    "bad version": b"GET / HTTP/2.0\r\n" + HOST + b"\r\n",
    "bare LF inside": b"GET / HTTP/1.1\n" + HOST + b"\r\n",
    "huge length": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 99999999999999\r\n\r\n",
    "only the blank line": b"\r\n\r\n",
    "leading blank line": b"\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n",
}


@pytest.mark.parametrize("data", list(WHOLE.values()), ids=list(WHOLE))
def test_a_whole_head_fed_alone_gives_what_the_python_branch_gives(data):
    valid_authority("127.0.0.1:8000")
    agree([data])
    agree([data, b"hello", b"GET / HTTP/1.1\r\n" + HOST + b"\r\n"])  # (and what follows it)


def test_it_answers_the_common_head_and_sets_the_state():
    valid_authority("127.0.0.1:8000")
    parser = RequestParser()
    events = whole_head(parser, WHOLE["hello"])
    assert [type(e).__name__ for e in events] == ["RequestHead", "EndOfMessage"] and parser.state == DONE
    parser = RequestParser()
    events = whole_head(parser, WHOLE["form head"])
    assert len(events) == 1 and events[0].content_length == 4096
    assert parser.state == BODY and parser._remaining == 4096


NOT_ITS_PIECE = {
    "more after the head": WHOLE["hello"] + b"GET",
    "a head and its body": WHOLE["length 0"][:-4] + b"\r\nContent-Length: 2\r\n\r\nab",
    "half a head": WHOLE["hello"][:-2],
    "pipelined": WHOLE["hello"] * 2,
    "pipelined, the first not plain": WHOLE["folded"] + WHOLE["hello"],
    "a body that is a blank line": WHOLE["length 0"][:-4] + b"\r\nContent-Length: 4\r\n\r\n\r\n\r\n",
    "empty": b"",
    "blank line only": b"\r\n",
}


@pytest.mark.parametrize("data", list(NOT_ITS_PIECE.values()), ids=list(NOT_ITS_PIECE))
def test_any_other_piece_is_declined_and_fed_as_before(data):
    assert whole_head(RequestParser(), data) is None
    agree([data])


def test_it_declines_other_parsers_and_states_and_types():
    data = WHOLE["hello"]
    assert whole_head(BranchParser(), data) is None
    for kind in (bytearray, memoryview, type("Bytes", (bytes,), {})):
        assert whole_head(RequestParser(), kind(data)) is None
        agree([kind(data)])
    parser = RequestParser()
    parser.feed(b"G")
    assert whole_head(parser, data) is None and parser.buffer == b"G"
    parser = RequestParser()
    parser.feed(WHOLE["form head"])
    assert whole_head(parser, data) is None and parser.state == BODY
    assert whole_head(object(), data) is None


def test_the_limits_hold_at_their_bounds():
    """feed's branch takes a head shorter than the head size less 3 bytes; longer ones go the
    buffered way. The request line, field size and field count limits around their bounds."""
    valid_authority("127.0.0.1:8000")
    for data in (WHOLE["hello"], WHOLE["hello"][:-2] + b"X: abc\r\n\r\n"):
        for request_line in (13, 14, 15):
            for fields in (1, 2, 3):
                for field_size in range(18, 30):
                    agree([data], Limits(request_line=request_line, fields=fields, field_size=field_size))


def test_an_error_leaves_the_parser_in_error():
    valid_authority("127.0.0.1:8000")
    parser = RequestParser(Limits(body=10))
    with pytest.raises(HttpError) as raised:
        parser.feed(WHOLE["form head"])
    assert raised.value.status == 413 and parser.state == ERROR
    agree([WHOLE["form head"]], Limits(body=10))


def test_bad_arguments_raise():
    with pytest.raises(TypeError):
        whole_head(RequestParser())
    with pytest.raises(TypeError):
        parser_module.compiled("set_parser_type")(RequestParser, None, (HEAD, DONE), VALID_HOSTS)
    with pytest.raises(TypeError):
        parser_module.compiled("set_parser_type")(RequestHead, None, (HEAD, DONE, ERROR), VALID_HOSTS)


def test_answered_declined_and_failed_pieces_leak_nothing():
    valid_authority("127.0.0.1:8000")
    for data in (WHOLE["browser"], WHOLE["form head"], WHOLE["host never checked"], WHOLE["leading blank line"],
                 NOT_ITS_PIECE["pipelined"]):
        assert_no_leak(lambda n: [RequestParser().feed(data) for _ in range(n)], shared=(data, VALID_HOSTS))

    def failing(n):
        for _ in range(n):
            for data, limits in ((WHOLE["form head"], Limits(body=10)), (WHOLE["folded"], Limits())):
                with pytest.raises(HttpError):
                    RequestParser(limits).feed(data)

    assert_no_leak(failing)


NAMES = ["Host", "host", "Content-Length", "Connection", "Transfer-Encoding", "Expect", "Upgrade", "Cookie", "A"]
VALUES = ["127.0.0.1:8000", "h", "", "a b", "0", "5", "007", "1" * 19, "keep-alive", "close", "upgrade",
          "chunked", "100-continue", "websocket", "caf\xe9"]


@st.composite
def heads(draw):
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "PUT", "X"]))
    target = draw(st.sampled_from(["/", "/a?b=1", "/%41", "*", "http://h/"]))
    version = draw(st.sampled_from(["1.1", "1.0", "1.2"]))
    lines = [f"{method} {target} HTTP/{version}"]
    for _ in range(draw(st.integers(0, 5))):
        lines.append(draw(st.sampled_from(NAMES)) + ": " + draw(st.sampled_from(VALUES)))
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=heads(), after=st.sampled_from([b"", b"abc", b"0\r\n\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"]),
       checked=st.booleans())
def test_generated_heads_agree_with_the_python_branch(data, after, checked):
    VALID_HOSTS.clear()
    if checked:
        valid_authority("127.0.0.1:8000"), valid_authority("h")
    agree([data, after] if after else [data])
