"""Nothing that parses client bytes costs more than linear time.

Each parser entry point is fed the worst inputs for it (a long run of the byte a
quantifier loops on, then an invalid byte; many tiny separators; a head or a line
delivered in small pieces) at a size n and at 8n. Linear code takes about 8 times as
long on the second; a pattern that backtracks over a run of blanks, or a scan that
starts again from the start of a growing buffer, takes about 64 times as long. The
bound is 10 times, measured in CPU time as the best of several interleaved runs, each
repeated until the larger input takes at least 50 ms, and measured again (up to five
times) before a test fails, so that a loaded machine does not fail a linear parser.

The HTTP parser runs with the compiled head parser and with its Python reference
(the implementation is a parameter, as in test_chead.py).
"""

import asyncio
import datetime
import functools
import gc
import math
import struct
import time

import pytest
from multidict import CIMultiDict

from server.protocol.errors import HttpError
from server.protocol.events import EndOfMessage, RequestHead
from server.protocol.forwarded import AllowList, ProxyPolicy, parse_forwarded
from server.protocol.limits import Limits
from server.protocol.parser import RequestParser, plain_head_c, plain_head_py
from server.protocol.proxyprotocol import V2_SIGNATURE, ProxyHeaderError, parse_proxy_header
from server.protocol.uwsgi import UwsgiParser
from server import web
from server.web.fileresponse import FileResponse
from server.web.multipart import parse_content_disposition
from server.web.request import Request
from server.web.streams import StreamReader
from server.websocket.handshake import HandshakeError, check_request

GROWTH = 8  # the larger input is this many times the smaller
BOUND = 10  # and may take at most this many times as long
MIN_TIME = 0.05  # CPU seconds the larger input takes at least (repeated until it does)
RUNS = 5  # best of this many, interleaved
ATTEMPTS = 5  # measurements before a test fails
PIECE = 100  # bytes per write when a head is delivered in pieces

# Limits far above the inputs: what is measured is the parsing, not a limit refusing it.
BIG = Limits(request_line=10**8, fields=10**6, field_size=10**8, chunk_line=10**8)
HEAD = b"GET / HTTP/1.1\r\nHost: a\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

NOT_BUILT = "the compiled parser is not built (or ASYNCWORKER_PURE_PYTHON=1)"
IMPLEMENTATIONS = [
    pytest.param(plain_head_py, id="py"),
    pytest.param(plain_head_c, id="c", marks=pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)),
]


def _once(run, arg, repeat: int) -> float:
    """CPU seconds of ``repeat`` runs, without the garbage collector (as timeit does). CPU
    time, not wall-clock time: other processes on a loaded machine do not count."""
    gc.collect()
    gc.disable()
    try:
        start = time.thread_time()
        for _ in range(repeat):
            run(arg)
        return time.thread_time() - start
    finally:
        gc.enable()


def measure_growth(run, make, n: int) -> tuple[float, float]:
    """The best times of ``run`` on ``make(n)`` and on ``make(8 * n)``."""
    small, big = make(n), make(GROWTH * n)
    small_once, big_once = _once(run, small, 1), _once(run, big, 1)
    if big_once > 1 and big_once > 2 * BOUND * small_once:
        return small_once, big_once  # no need to measure it again
    repeat = max(1, math.ceil(MIN_TIME / max(big_once, 1e-9)))
    for _ in range(ATTEMPTS):
        t_small = t_big = math.inf
        for _ in range(RUNS):
            t_small = min(t_small, _once(run, small, repeat))
            t_big = min(t_big, _once(run, big, repeat))
        if t_big <= BOUND * t_small:
            break
    return t_small, t_big


def assert_linear(figure, scenario: str, run, make, n: int) -> None:
    t_small, t_big = measure_growth(run, make, n)
    ratio = t_big / t_small
    figure(scenario, f"time for {GROWTH}x the input", round(ratio, 1), "x", f"<= {BOUND}")
    assert ratio <= BOUND, f"{scenario}: {GROWTH}x the input took {ratio:.1f}x as long ({t_small:.4f}s, {t_big:.4f}s)"


def parser_class(impl):
    class Parser(RequestParser):
        _plain_head = staticmethod(impl)
        _request_head = None if impl is plain_head_py else RequestParser._request_head
    return Parser


def refused(make_parser):
    """Feed the bytes whole; they must be refused."""
    def run(data: bytes) -> None:
        with pytest.raises(HttpError):
            make_parser().feed(data)
    return run


def in_pieces(make_parser):
    """Feed the bytes ``PIECE`` at a time; they must make one whole request."""
    def run(pieces: list) -> None:
        parser = make_parser()
        events = []
        for piece in pieces:
            events += parser.feed(piece)
        assert isinstance(events[0], RequestHead) and isinstance(events[-1], EndOfMessage)
    return run


def pieces(data: bytes) -> list:
    return [data[i:i + PIECE] for i in range(0, len(data), PIECE)]


# -- the HTTP parser: whole inputs, refused ------------------------------------------------

REFUSED = {
    "method of one long token": (lambda n: b"G" * n + b"\x01 / HTTP/1.1\r\nHost: a\r\n\r\n", 20_000),
    "absolute-form host": (lambda n: b"GET http://" + b"a" * n + b"\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 20_000),
    "absolute-form IPv6 host": (lambda n: b"GET http://[" + b":" * n + b"\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 20_000),
    "origin-form path": (lambda n: b"GET /" + b"a" * n + b"\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 20_000),
    "field value of blanks": (lambda n: HEAD + b"X:" + b" " * n + b"\x01\r\n\r\n", 2_000),
    "field value of words and blanks": (lambda n: HEAD + b"X: " + b"a \t" * n + b"\x01\r\n\r\n", 20_000),
    "field name then blanks before the colon": (lambda n: HEAD + b"X" * n + b" " * n + b": a\r\n\r\n", 20_000),
    "many fields, the last invalid": (lambda n: HEAD + b"X:a\r\n" * n + b"X: \x01\r\n\r\n", 4_000),
    "trailer value of blanks": (lambda n: CHUNKED + b"0\r\nX:" + b" " * n + b"\x01\r\n\r\n", 2_000),
    "chunk extensions, many": (lambda n: CHUNKED + b"1" + b";a" * n + b"\x01\r\n", 20_000),
    "chunk extension value after blanks": (lambda n: CHUNKED + b"1;a=" + b" \t" * n + b"\x01\r\n", 20_000),
    "chunk extensions with blanks": (lambda n: CHUNKED + b"1" + b" ; a = b " * n + b"\x01\r\n", 20_000),
    "chunk extension quoted-string": (lambda n: CHUNKED + b'1;a="' + b"\\a b" * n + b"\x01\r\n", 20_000),
}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_http_parser_refuses_in_linear_time(figure, impl, case):
    make, n = REFUSED[case]
    parser = parser_class(impl)
    assert_linear(figure, f"http parser ({case})", refused(lambda: parser(BIG)), make, n)


# -- the HTTP parser: a large head (or chunk line, or trailers) in small pieces -------------

IN_PIECES = {
    "head of many short fields": lambda n: HEAD + b"X-Field-A: value\r\n" * (n // 18) + b"\r\n",
    "head of one long field": lambda n: HEAD + b"X: " + b"a" * n + b"\r\n\r\n",
    "long request line": lambda n: b"GET /" + b"a" * n + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "long chunk-size line": lambda n: CHUNKED + b"1" + b";a=b" * (n // 4) + b"\r\nx\r\n0\r\n\r\n",
    "long trailer line": lambda n: CHUNKED + b"0\r\nX: " + b"a" * n + b"\r\n\r\n",
    "many trailer lines": lambda n: CHUNKED + b"0\r\n" + b"X: a\r\n" * (n // 6) + b"\r\n",
}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", list(IN_PIECES))
def test_http_parser_takes_pieces_in_linear_time(figure, impl, case):
    make = IN_PIECES[case]
    parser = parser_class(impl)
    assert_linear(figure, f"http parser, {PIECE}-byte pieces ({case})", in_pieces(lambda: parser(BIG)),
                  lambda n: pieces(make(n)), 10_000)


def test_the_default_limits_hold_a_head_of_810_kb_in_pieces(figure):
    """The brief's own figure: the largest head the default limits take, 100 bytes a write."""
    head = HEAD + (b"X-" + b"a" * 8180 + b": b\r\n") * 99 + b"\r\n"
    assert 800_000 < len(head) < Limits().head_size
    run = in_pieces(lambda: RequestParser())
    elapsed = min(_once(run, pieces(head), 1) for _ in range(3))
    figure("http parser, 810 KB head in 100-byte pieces", "time", round(elapsed, 3), "s", "<= 0.5")
    assert elapsed <= 0.5


# -- uwsgi packets ----------------------------------------------------------------------------

def uwsgi_packet(variables: dict) -> bytes:
    body = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in variables.items())
    return struct.pack("<BHB", 0, len(body), 0) + body


def test_uwsgi_field_values_are_refused_in_linear_time(figure):
    def make(n):
        return uwsgi_packet({b"REQUEST_METHOD": b"GET", b"REQUEST_URI": b"/", b"HTTP_HOST": b"a",
                             b"HTTP_X": b" " * n + b"\x01"})
    # A packet is at most 64 KiB: the run is as long as it may be.
    assert_linear(figure, "uwsgi (field value of blanks)", refused(lambda: UwsgiParser(BIG)), make, 2_000)


def test_uwsgi_packet_in_pieces_takes_linear_time(figure):
    def make(n):
        fields = {b"HTTP_X_%d" % i: b"a" for i in range(n // 20)}
        return pieces(uwsgi_packet({b"REQUEST_METHOD": b"GET", b"REQUEST_URI": b"/", b"HTTP_HOST": b"a", **fields}))
    assert_linear(figure, "uwsgi, packet in 100-byte pieces", in_pieces(lambda: UwsgiParser(BIG)), make, 7_000)


# -- PROXY protocol ---------------------------------------------------------------------------

def test_proxy_v1_takes_linear_time(figure):
    def run(data):
        with pytest.raises(ProxyHeaderError):
            parse_proxy_header(data, "v1")
    assert_linear(figure, "PROXY v1 (no CRLF)", run, lambda n: b"PROXY TCP4 " + b"1" * n, 100_000)


def test_proxy_v2_takes_linear_time(figure):
    def make(n):
        body = bytes(4) + bytes(4) + b"\x00\x01\x00\x02" + b"\x04" + struct.pack("!H", n) + b"\x00" * n
        return V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, len(body)) + body
    assert_linear(figure, "PROXY v2 (long TLV)", lambda data: parse_proxy_header(data, "v2"), make, 8_000)


# -- Forwarded, X-Forwarded-For ---------------------------------------------------------------

POLICY_XFF = ProxyPolicy(AllowList("127.0.0.1,10.0.0.0/8"), (), frozenset(), "x-forwarded")
POLICY_FORWARDED = ProxyPolicy(AllowList("127.0.0.1,10.0.0.0/8"), (), frozenset(), "forwarded")
PEER = ("127.0.0.1", 40000)

FORWARDED = {
    "X-Forwarded-For, all hops trusted": (
        POLICY_XFF, lambda n: [("X-Forwarded-For", "10.0.0.1, " * n + "10.0.0.2")], 1_000),
    "Forwarded, many pairs": (
        POLICY_FORWARDED, lambda n: [("Forwarded", "for=a;" * n + "\x01")], 5_000),
    "Forwarded, many elements": (
        POLICY_FORWARDED, lambda n: [("Forwarded", "for=10.0.0.1," * n + "for=\x01")], 5_000),
    "Forwarded, quoted-string of escapes": (
        POLICY_FORWARDED, lambda n: [("Forwarded", 'for="' + "\\a" * n + "\x01")], 20_000),
}


@pytest.mark.parametrize("case", list(FORWARDED))
def test_forwarded_headers_take_linear_time(figure, case):
    policy, make, n = FORWARDED[case]
    assert_linear(figure, f"forwarded ({case})", lambda headers: policy.resolve(headers, PEER, "http"),
                  lambda n: CIMultiDict(make(n)), n)


def test_parse_forwarded_takes_linear_time(figure):
    assert_linear(figure, "parse_forwarded (many pairs)", parse_forwarded,
                  lambda n: ["for=a;by=b;" * n + "x=\x01"], 5_000)


# -- the WebSocket handshake ------------------------------------------------------------------

def upgrade_head(field: bytes) -> RequestHead:
    head = (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + field + b"\r\n\r\n")
    return RequestParser(BIG).feed(head)[0]


HANDSHAKE = {
    "extension with many parameters": (b"Sec-WebSocket-Extensions",
                                       lambda n: b"permessage-deflate" + b"; a" * n + b"/"),
    "extension parameters with values": (b"Sec-WebSocket-Extensions",
                                         lambda n: b"permessage-deflate" + b'; a=b; c="d\\e"' * n + b" /"),
    "many subprotocols": (b"Sec-WebSocket-Protocol", lambda n: b"a, " * n + b"/"),
}


@pytest.mark.parametrize("case", list(HANDSHAKE))
def test_websocket_handshake_fields_take_linear_time(figure, case):
    def run(head):
        with pytest.raises(HandshakeError):
            check_request(head)
    name, value = HANDSHAKE[case]
    assert_linear(figure, f"websocket handshake ({case})", run, lambda n: upgrade_head(name + b": " + value(n)), 5_000)


# -- native requests: urlencoded forms, Range, multipart part heads ---------------------------

def native_request(head: bytes, body: bytes = b"", app: web.Application | None = None, loop=None) -> Request:
    """A native request of these bytes (its body stream on ``loop``, or on a loop of its own:
    the test may run where no loop is current)."""
    events = RequestParser(BIG).feed(head + body)
    content = StreamReader(loop=loop or _own_loop())
    content.feed_data(body)
    content.feed_eof()
    return Request(events[0], content, None, app if app is not None else web.Application())


@functools.cache
def _own_loop():
    return asyncio.new_event_loop()


def test_urlencoded_form_takes_linear_time(figure):
    """The parse itself, without the field cap (``max_form_fields=0``), which would refuse it."""
    loop = asyncio.new_event_loop()
    uncapped = web.Application(max_form_fields=0)

    def make(n):
        body = b"a=b&" * n + b"c=%zz"
        return (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body), body)

    def run(request_bytes):
        form = loop.run_until_complete(native_request(*request_bytes, app=uncapped, loop=loop).post())
        assert len(form) > 1000

    try:
        assert_linear(figure, "urlencoded form (many fields)", run, make, 5_000)
    finally:
        loop.close()


def test_range_takes_linear_time(figure):
    mtime = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)

    def run(request):
        assert FileResponse._range(request, '"x"', mtime, 100) is None

    def make(n):
        return native_request(HEAD + b"Range: bytes=" + b" " * n + b"1-2,x\r\n\r\n")
    assert_linear(figure, "Range (blanks)", run, make, 100_000)


def test_multipart_content_disposition_takes_linear_time(figure):
    assert_linear(figure, "multipart Content-Disposition (many parameters)", parse_content_disposition,
                  lambda n: "form-data" + "; a=b" * n, 5_000)


def test_router_resolves_in_linear_time(figure):
    router = web.Router()
    router.add_get("/{a}-{b}-{c}", native_handler)
    assert_linear(figure, "router (route /{a}-{b}-{c}, a path of many '-')",
                  lambda path: router.resolve("GET", path), lambda n: "/" + "a-" * n + "/", 250)


async def native_handler(request):
    return web.Response()
