"""The fast path for plain request heads, compiled (server/protocol/_chead.c) and in
Python (``parser.plain_head_py``, the reference).

Each hand-written case states the expected result and runs on both implementations,
and every result is also checked equal to the reference's: typical heads, each way a
head is declined, each limit at its bound and one past, field values, the ``special``
mask, and the shortcut past ``_build_head`` that the mask allows. The extension must
be built (CPython on Linux with a compiler) unless ``ASYNCWORKER_PURE_PYTHON=1``.
"""

import importlib
import os
import subprocess
import sys

import pytest

from helpers import assert_no_leak
from server.protocol import parser
from server.protocol.errors import HttpError
from server.protocol.parser import (
    SPECIAL_CONNECTION,
    SPECIAL_CONTENT_LENGTH,
    SPECIAL_CONTENT_TYPE,
    SPECIAL_EXPECT,
    SPECIAL_HOST,
    SPECIAL_TRANSFER_ENCODING,
    SPECIAL_UPGRADE,
    RequestParser,
    plain_head_c,
    plain_head_py,
)
from server.protocol.events import RequestHead
from multidict import istr

PURE = os.environ.get("ASYNCWORKER_PURE_PYTHON") == "1"
NOT_BUILT = "the compiled parser is not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)"
LIMITS = (4094, 8190, 100)  # request_line, field_size, fields: the defaults of Limits

IMPLEMENTATIONS = [
    pytest.param(plain_head_py, id="py"),
    pytest.param(plain_head_c, id="c", marks=pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)),
]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    return request.param


def parse(impl, head: bytes, limits=LIMITS):
    """``impl``'s result, after checking it is the reference's, types included."""
    got = impl(head, *limits)
    want = plain_head_py(head, *limits)
    assert got == want, (head, got, want)
    if got is not None:
        assert [type(v) for v in got] == [str, str, str, str, int, list, list, int]
        assert all(type(n) is bytes and type(v) is bytes for n, v in got[5])
        assert all(type(n) in (str, istr) and type(v) is str for n, v in got[6])  # istr: a common name
    return got


# --- the extension itself -------------------------------------------------------------

def test_extension_is_built():
    if PURE:
        pytest.skip("ASYNCWORKER_PURE_PYTHON=1: the Python parser is forced")
    try:
        importlib.import_module("server.protocol._chead")
    except ImportError as exc:
        pytest.fail(f"server.protocol._chead does not import ({exc}); build it with "
                    f"`pip install -e .` (it needs a C compiler and the Python headers)")
    assert parser.plain_head is plain_head_c is not None
    assert RequestParser._plain_head is plain_head_c


def test_pure_python_switch_is_read_at_import():
    code = ("from server.protocol import parser as p; "
            "assert p.plain_head is p.plain_head_py and p.plain_head_c is None; "
            "assert p.RequestParser._plain_head is p.plain_head_py; "
            "assert p.simple_head is p.simple_head_py and p.simple_head_c is None")
    env = {**os.environ, "ASYNCWORKER_PURE_PYTHON": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
def test_special_bits_are_the_same_in_c_and_python():
    chead = importlib.import_module("server.protocol._chead")
    names = ["HOST", "CONTENT_LENGTH", "TRANSFER_ENCODING", "CONNECTION", "EXPECT", "UPGRADE", "CONTENT_TYPE"]
    assert {n: getattr(chead, f"SPECIAL_{n}") for n in names} == {n: getattr(parser, f"SPECIAL_{n}") for n in names}


@pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
@pytest.mark.parametrize("args, message", [
    ((b"GET / HTTP/1.1",), "expected 4 arguments"),
    ((b"GET / HTTP/1.1", 1, 2, 3, 4), "expected 4 arguments"),
    (("GET / HTTP/1.1", 1, 2, 3), "must be bytes"),
    ((bytearray(b"GET / HTTP/1.1"), 1, 2, 3), "must be bytes"),
    ((b"GET / HTTP/1.1", 1.0, 2, 3), "integer"),
    ((b"GET / HTTP/1.1", 1, None, 3), "integer"),
])
def test_compiled_parser_checks_its_arguments(args, message):
    with pytest.raises(TypeError, match=message):
        plain_head_c(*args)


# --- typical heads ----------------------------------------------------------------------

def test_wrk_head(impl):
    assert parse(impl, b"GET / HTTP/1.1\r\nHost: h") == (
        "GET", "/", "/", "", 1, [(b"Host", b"h")], [("Host", "h")], SPECIAL_HOST)


BROWSER_FIELDS = [
    (b"Host", b"example.com"),
    (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"Accept-Language", b"en-US,en;q=0.5"),
    (b"Accept-Encoding", b"gzip, deflate, br, zstd"),
    (b"Referer", b"https://example.com/index.html"),
    (b"Cookie", b"session=abc123; theme=dark"),
    (b"Upgrade-Insecure-Requests", b"1"),
    (b"Sec-Fetch-Dest", b"document"),
    (b"sec-fetch-mode", b"navigate"),
]


def test_browser_head(impl):
    head = b"GET /static/app.js?v=3&x=%20 HTTP/1.1\r\n" + b"\r\n".join(n + b": " + v for n, v in BROWSER_FIELDS)
    assert parse(impl, head) == (
        "GET", "/static/app.js?v=3&x=%20", "/static/app.js", "v=3&x=%20", 1, BROWSER_FIELDS,
        [(n.decode(), v.decode()) for n, v in BROWSER_FIELDS], SPECIAL_HOST)


def test_http10_head_without_host(impl):
    assert parse(impl, b"POST /form HTTP/1.0\r\nAccept: */*") == (
        "POST", "/form", "/form", "", 0, [(b"Accept", b"*/*")], [("Accept", "*/*")], 0)


def test_request_line_alone(impl):
    assert parse(impl, b"HEAD /x HTTP/1.1") == ("HEAD", "/x", "/x", "", 1, [], [], 0)


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "GETS", "get",
                                    "connect", "CONNECTS", "M-SEARCH", "!#$%&'*+-.^_`|~09AZaz", "X" * 300])
def test_any_token_is_a_method_but_connect(impl, method):
    assert parse(impl, method.encode() + b" / HTTP/1.1\r\nHost: h")[0] == method


@pytest.mark.parametrize("target, path, query", [
    ("/", "/", ""),
    ("/?", "/", ""),
    ("/a?b?c", "/a", "b?c"),
    ("/a/b;c=d?e=f&g", "/a/b;c=d", "e=f&g"),
    ("//x", "//x", ""),
    ("/\"!$%&'()*+,-./09:;<=>@AZ[\\]^_`az{|}~", "/\"!$%&'()*+,-./09:;<=>@AZ[\\]^_`az{|}~", ""),
])
def test_targets(impl, target, path, query):
    got = parse(impl, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: h")
    assert got[1:4] == (target, path, query)


# --- field values -----------------------------------------------------------------------

@pytest.mark.parametrize("line, value", [
    (b"X: a", b"a"),
    (b"X:a", b"a"),
    (b"X: \t a b \t ", b"a b"),
    (b"X:\t\ta\tb\t\t", b"a\tb"),
    (b"X:", b""),
    (b"X:   ", b""),
    (b"X: \t", b""),
    (b"X: a:b: c", b"a:b: c"),
    (b"X: \"quoted, \\\"list\\\"\"", b"\"quoted, \\\"list\\\"\""),
    (b"X: caf\xe9 \x80\xff", b"caf\xe9 \x80\xff"),
    (b"X: \xa0", b"\xa0"),  # NBSP is obs-text, not whitespace
])
def test_field_values(impl, line, value):
    got = parse(impl, b"GET / HTTP/1.1\r\nHost: h\r\n" + line)
    assert got[5][1] == (b"X", value)
    assert got[6][1] == ("X", value.decode("latin-1"))


def test_repeated_and_many_fields_keep_their_order(impl):
    # Past 64 fields the compiled parser moves its field table to the heap.
    lines = [b"Host: h"] + [b"X-%d: %d" % (i % 7, i) for i in range(150)]
    got = parse(impl, b"GET / HTTP/1.1\r\n" + b"\r\n".join(lines), (4094, 8190, 151))
    assert got[5] == [tuple(line.split(b": ")) for line in lines]


# --- declined heads ---------------------------------------------------------------------

DECLINED = {
    "empty": b"",
    "method only": b"GET",
    "no target": b"GET ",
    "no version": b"GET /",
    "cut version": b"GET / HTTP/1.",
    "bare CR in value": b"GET / HTTP/1.1\r\nHost: h\rX: y",
    "bare CR at the end": b"GET / HTTP/1.1\r\nHost: h\r",
    "bare CR after the request line": b"GET / HTTP/1.1\rHost: h",
    "CR CR LF": b"GET / HTTP/1.1\r\r\nHost: h",
    "bare CR in the request line": b"GET /\r HTTP/1.1\r\nHost: h",
    "bare LF after the request line": b"GET / HTTP/1.1\nHost: h",
    "bare LF between fields": b"GET / HTTP/1.1\r\nHost: h\nX: y",
    "bare LF at the end": b"GET / HTTP/1.1\r\nHost: h\n",
    "LF CR": b"GET / HTTP/1.1\n\rHost: h",
    "NUL in value": b"GET / HTTP/1.1\r\nHost: h\x00",
    "NUL in name": b"GET / HTTP/1.1\r\nHo\x00st: h",
    "NUL in target": b"GET /\x00 HTTP/1.1\r\nHost: h",
    "NUL in method": b"G\x00ET / HTTP/1.1\r\nHost: h",
    "DEL in value": b"GET / HTTP/1.1\r\nHost: h\x7f",
    "DEL in target": b"GET /\x7f HTTP/1.1\r\nHost: h",
    "SOH in value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b",
    "VT in value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x0bb",
    "US in value": b"GET / HTTP/1.1\r\nHost: h\r\nX: \x1f",
    "ESC in value": b"GET / HTTP/1.1\r\nHost: h\r\nX: \x1b[0m",
    "obs-fold with SP": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b",
    "obs-fold with HTAB": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb",
    "space before colon": b"GET / HTTP/1.1\r\nHost : h",
    "tab before colon": b"GET / HTTP/1.1\r\nHost\t: h",
    "space before name": b"GET / HTTP/1.1\r\n Host: h",
    "empty name": b"GET / HTTP/1.1\r\n: h",
    "no colon": b"GET / HTTP/1.1\r\nHost h",
    "empty field line": b"GET / HTTP/1.1\r\n\r\nHost: h",
    "trailing CRLF": b"GET / HTTP/1.1\r\nHost: h\r\n",
    "( in name": b"GET / HTTP/1.1\r\nHo(st: h",
    "@ in name": b"GET / HTTP/1.1\r\nX@Y: h",
    "DQUOTE in name": b"GET / HTTP/1.1\r\nX\"Y: h",
    "0x80 in name": b"GET / HTTP/1.1\r\nX\x80: h",
    "0xff in name": b"GET / HTTP/1.1\r\n\xff: h",
    "# in target": b"GET /a#b HTTP/1.1\r\nHost: h",
    "space in target": b"GET /a b HTTP/1.1\r\nHost: h",
    "tab in target": b"GET /a\tb HTTP/1.1\r\nHost: h",
    "0x80 in target": b"GET /caf\xe9 HTTP/1.1\r\nHost: h",
    "0xff in target": b"GET /\xff HTTP/1.1\r\nHost: h",
    "relative target": b"GET a/b HTTP/1.1\r\nHost: h",
    "absolute-form": b"GET http://h/ HTTP/1.1\r\nHost: h",
    "authority-form": b"GET h:80 HTTP/1.1\r\nHost: h",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: h",
    "CONNECT": b"CONNECT h:443 HTTP/1.1\r\nHost: h",
    "CONNECT with origin-form": b"CONNECT / HTTP/1.1\r\nHost: h",
    "HTTP/2.0": b"GET / HTTP/2.0\r\nHost: h",
    "HTTP/1.2": b"GET / HTTP/1.2\r\nHost: h",
    "HTTP/0.9": b"GET / HTTP/0.9\r\nHost: h",
    "HTTP/1.10": b"GET / HTTP/1.10\r\nHost: h",
    "HTTP/1.": b"GET / HTTP/1.\r\nHost: h",
    "HTTP/11": b"GET / HTTP/11\r\nHost: h",
    "lowercase http": b"GET / http/1.1\r\nHost: h",
    "Http": b"GET / Http/1.1\r\nHost: h",
    "no version at all": b"GET /\r\nHost: h",
    "trailing space": b"GET / HTTP/1.1 \r\nHost: h",
    "leading space": b" GET / HTTP/1.1\r\nHost: h",
    "double space after method": b"GET  / HTTP/1.1\r\nHost: h",
    "double space before version": b"GET /  HTTP/1.1\r\nHost: h",
    "tab separator": b"GET\t/ HTTP/1.1\r\nHost: h",
    "no method": b" / HTTP/1.1\r\nHost: h",
    "non-tchar in method": b"G@T / HTTP/1.1\r\nHost: h",
    "0x80 in method": b"G\x80T / HTTP/1.1\r\nHost: h",
    "junk after version": b"GET / HTTP/1.1x\r\nHost: h",
    "CRLF CRLF inside": b"GET / HTTP/1.1\r\nHost: h\r\n\r\nX: y",
}


@pytest.mark.parametrize("head", list(DECLINED.values()), ids=list(DECLINED))
def test_declined_heads(impl, head):
    assert parse(impl, head) is None


FULL_CHECKS_ACCEPT = {"asterisk", "absolute-form", "HTTP/1.2"}


@pytest.mark.parametrize("name, head", list(DECLINED.items()), ids=list(DECLINED))
def test_declined_heads_are_refused_by_the_full_checks(impl, name, head):
    """Through the parser, a declined head is refused, but for the few forms only
    the full checks accept (asterisk-form, absolute-form, a higher minor version)."""

    class Parser(RequestParser):
        _plain_head = staticmethod(impl)
        _request_head = None if impl is plain_head_py else RequestParser._request_head

    try:
        Parser()._parse_head_block(head)
    except HttpError:
        accepted = False
    else:
        accepted = True
    assert accepted == (name in FULL_CHECKS_ACCEPT)


# --- every head one byte away from a plain one ------------------------------------------------

NEIGHBOURHOOD_BASES = [
    b"GET /a?q=1 HTTP/1.1\r\nHost: h\r\nX-Y:\t v w \r\nE:\r\nContent-Type: t",
    b"POST /p HTTP/1.0\r\nhost:h\r\nTransfer-Encoding: chunked",
    b"OPTIONS / HTTP/1.1",
    # a value of many 8-byte words (the compiled parser checks them a word at a time)
    b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: Mozilla/5.0 (X11; rv:128) \xe9t\xe9 Firefox/128.0",
]


@pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
@pytest.mark.parametrize("base", NEIGHBOURHOOD_BASES)
def test_compiled_parser_agrees_on_every_head_one_byte_away(base):
    """Each of the 256 bytes put in each place of a plain head (replacing or inserting),
    and each byte deleted: the compiled parser gives the reference's result, with the
    limits this head meets exactly and one below each."""
    line_end = base.find(b"\r\n") if b"\r\n" in base else len(base)
    exact = (line_end, len(base) - line_end, base.count(b"\r\n"))
    assert plain_head_py(base, *exact) is not None
    variants = [base[:i] + base[i + 1:] for i in range(len(base))]
    for i in range(len(base) + 1):
        for byte in range(256):
            b = bytes([byte])
            variants.append(base[:i] + b + base[i:])
            if i < len(base):
                variants.append(base[:i] + b + base[i + 1:])
    differ = []
    for head in variants:
        for limits in (LIMITS, exact, (exact[0] - 1, *exact[1:]), (exact[0], exact[1] - 1, exact[2]),
                       (*exact[:2], exact[2] - 1)):
            if plain_head_c(head, *limits) != plain_head_py(head, *limits):
                differ.append((head, limits))
    assert not differ, differ[:5]


# --- limits, each at its bound and one past -----------------------------------------------

HEAD = b"GET /abc HTTP/1.1\r\nHost: h\r\nX: 1"  # request line 17, field lines 9 + 6, 2 fields


@pytest.mark.parametrize("limits, accepted", [
    ((17, 15, 2), True),
    ((16, 15, 2), False),
    ((17, 14, 2), False),
    ((17, 15, 1), False),
    ((2**80, 2**80, 2**80), True),
    ((-1, 15, 2), False),
    ((17, -1, 2), False),
    ((17, 15, -1), False),
    ((-2**80, 15, 2), False),
    ((0, 0, 0), False),
])
def test_limits(impl, limits, accepted):
    assert (parse(impl, HEAD, limits) is not None) == accepted


@pytest.mark.parametrize("limits, accepted", [
    ((14, 0, 0), True),
    ((13, 0, 0), False),
    ((14, -1, 0), False),
    ((14, 0, -1), False),
])
def test_limits_without_fields(impl, limits, accepted):
    assert (parse(impl, b"GET / HTTP/1.1", limits) is not None) == accepted


def test_field_count_limit_past_the_stack_table(impl):
    head = b"GET / HTTP/1.1" + b"\r\nX: y" * 100
    assert parse(impl, head, (4094, 8190, 100)) is not None
    assert parse(impl, head, (4094, 8190, 99)) is None
    assert parse(impl, head, (4094, 8190, 64)) is None


def test_field_size_counts_every_field_line_with_its_crlf(impl):
    """One bound for all field lines together (each is at most all of them)."""
    head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2"  # field lines: 6 + 6
    assert parse(impl, head, (4094, 12, 100)) is not None
    assert parse(impl, head, (4094, 11, 100)) is None


# --- the special mask ---------------------------------------------------------------------

SPECIALS = [
    ("host", SPECIAL_HOST),
    ("content-length", SPECIAL_CONTENT_LENGTH),
    ("transfer-encoding", SPECIAL_TRANSFER_ENCODING),
    ("connection", SPECIAL_CONNECTION),
    ("expect", SPECIAL_EXPECT),
    ("upgrade", SPECIAL_UPGRADE),
    ("content-type", SPECIAL_CONTENT_TYPE),
]


def spellings(name: str) -> list[str]:
    alternate = "".join(c.upper() if i % 2 else c for i, c in enumerate(name))
    return [name, name.upper(), name.title(), alternate, alternate.swapcase()]


@pytest.mark.parametrize("name, bit", SPECIALS, ids=[n for n, _ in SPECIALS])
def test_special_bits_in_any_case(impl, name, bit):
    for spelled in spellings(name):
        line = spelled.encode() + b": v"
        assert parse(impl, b"GET / HTTP/1.0\r\nX: y\r\n" + line)[7] == bit, spelled
        assert parse(impl, b"GET / HTTP/1.0\r\n" + line + b"\r\nX: y\r\n" + line)[7] == bit * 3, spelled
        assert parse(impl, b"GET / HTTP/1.0\r\n" + (line + b"\r\n") * 2 + line)[7] == bit * 3, spelled


def test_special_bits_together(impl):
    head = b"POST / HTTP/1.1\r\n" + b"\r\n".join(n.encode() + b": v" for n, _ in SPECIALS)
    assert parse(impl, head)[7] == sum(bit for _, bit in SPECIALS)


@pytest.mark.parametrize("name", ["Hosts", "Hos", "X-Host", "Host-", "Content-Lengths", "Content-Lengt",
                                  "Transfer-Encodings", "Connections", "Expects", "Upgrades", "Content_Type",
                                  "Content-Typf", "Iost", "Gost", "Ho-t", "Proxy-Connection", "Keep-Alive", "TE"])
def test_lookalike_names_are_not_special(impl, name):
    assert parse(impl, b"GET / HTTP/1.0\r\n" + name.encode() + b": v")[7] == 0


@pytest.mark.parametrize("name", [
    "DNT", "Host", "host", "Accept", "Cookie", "Expect", "Origin", "Pragma", "accept", "cookie", "origin",
    "Referer", "Upgrade", "referer", "Priority", "priority", "X-Real-IP", "sec-ch-ua", "Connection",
    "User-Agent", "connection", "user-agent", "Content-Type", "X-Request-ID", "content-type", "Authorization",
    "Cache-Control", "If-None-Match", "authorization", "cache-control", "Content-Length", "Sec-Fetch-Dest",
    "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "content-length", "sec-fetch-dest", "sec-fetch-mode",
    "sec-fetch-site", "sec-fetch-user", "Accept-Encoding", "Accept-Language", "X-Forwarded-For",
    "accept-encoding", "accept-language", "sec-ch-ua-mobile", "If-Modified-Since", "Transfer-Encoding",
    "X-Forwarded-Proto", "transfer-encoding", "sec-ch-ua-platform", "Upgrade-Insecure-Requests",
    "upgrade-insecure-requests", "DNS", "Hosu", "Accepu", "CookiE", "User-AgenT", "Sec-Fetch-Desu",
])
def test_common_field_names_come_back_as_sent(impl, name):
    """The compiled parser shares one object per common name: each must be its own."""
    got = parse(impl, b"GET / HTTP/1.0\r\n" + name.encode() + b": v\r\nX: y")
    assert got[5][0] == (name.encode(), b"v") and got[6][0] == (name, "v")


@pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
def test_compiled_parser_gives_common_names_as_istr():
    """A common name is multidict's istr (made once): CIMultiDict takes its case-folded form
    and hash from it instead of making them for every field of every request."""
    from multidict import istr
    got = plain_head_c(b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\nX-Custom: c", *LIMITS)
    names = [name for name, _ in got[6]]
    assert names == ["Host", "User-Agent", "X-Custom"]
    assert [type(name) is istr for name in names] == [True, True, False]
    again = plain_head_c(b"GET / HTTP/1.1\r\nHost: other", *LIMITS)
    assert again[6][0][0] is names[0]


@pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
def test_set_name_type_takes_only_a_type_that_keeps_the_name():
    chead = importlib.import_module("server.protocol._chead")
    host = plain_head_c(b"GET / HTTP/1.1\r\nHost: h", *LIMITS)[6][0][0]
    made = []

    def fails_later(name):  # (what it made before failing is let go; nothing is replaced)
        if len(made) == 5:
            raise ValueError(name)
        made.append(istr(str(name)))  # (a new object: the module's names are istr already)
        return made[-1]

    for bad, error in ((str.lower, TypeError), (bytes, TypeError), (lambda name: 1 / 0, ZeroDivisionError),
                       (fails_later, ValueError)):
        with pytest.raises(error):
            chead.set_name_type(bad)
    control = [istr(str(name)) for name in made]  # (new objects, held as made's are: by a list alone)
    counts = [sys.getrefcount(name) for name in made]
    expected = [sys.getrefcount(name) for name in control]
    assert counts == expected
    assert plain_head_c(b"GET / HTTP/1.1\r\nHost: h", *LIMITS)[6][0][0] is host  # unchanged
    assert type(host) is istr


# --- the shortcut past _build_head ----------------------------------------------------------

def _fields(head):
    return {name: (list(value.items()) if name == "headers" else value)
            for name in RequestHead.__dataclass_fields__ for value in [getattr(head, name)]}


def _outcome(build):
    try:
        return _fields(build())
    except HttpError as exc:
        return type(exc), exc.message


SHORTCUT_HEADS = [
    b"GET / HTTP/1.1\r\nHost: h",
    b"GET / HTTP/1.0\r\nHost: h",
    b"GET / HTTP/1.1\r\nhOST: h\r\nUpgrade: websocket",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain",
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: a\r\nUpgrade: b\r\nContent-Type: x",
]
CHECKED_HEADS = [
    b"GET / HTTP/1.1",
    b"GET / HTTP/1.0",
    b"GET / HTTP/1.0\r\nConnection: keep-alive",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade",
    # one Host and one Connection: the head is the simple one with Connection's decisions
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nAccept: */*",
    b"GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive",
    b"GET / HTTP/1.0\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: ,, ,",
    b"GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nUpgrade: b\r\nHost: h",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nContent-Type: x",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0",
    # one Host and one Content-Length (with or without one Connection): the simple head, sized
    b"POST / HTTP/1.0\r\nHost: h\r\nContent-Length: 12",
    b"POST / HTTP/1.1\r\nContent-Length: 007\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded",
    b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\nConnection: keep-alive",
    b"POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 3\r\nConnection: close",
    b"POST / HTTP/1.0\r\nHost: h\r\nContent-Length: 3\r\nConnection: Upgrade\r\nUpgrade: x",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: keep-alive",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \xd9\xa5",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: a\r\nConnection: b",
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: a\r\nContent-Type: b\r\nHost: h",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked",
    b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
    b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5",
    b"POST / HTTP/1.0\r\nHost: h\r\nExpect: 100-continue",
    b"POST / HTTP/1.1\r\nHost: h\r\nExpect: something",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: a\r\nContent-Type: b",
]


@pytest.mark.parametrize("head", SHORTCUT_HEADS + CHECKED_HEADS)
def test_plain_heads_build_what_the_full_checks_build(impl, head):
    """With or without the shortcut, the head (or error) is the one ``_parse_any_head``
    gives: the mask lets ``_build_head`` be skipped only when it would change nothing."""

    class Parser(RequestParser):
        _plain_head = staticmethod(impl)
        _request_head = None if impl is plain_head_py else RequestParser._request_head

    plain = parse(impl, head)
    assert plain is not None
    assert ((plain[7] & parser._NEEDS_CHECKS) == SPECIAL_HOST) == (head in SHORTCUT_HEADS)
    assert _outcome(lambda: Parser()._parse_plain_head(head)) == _outcome(lambda: RequestParser()._parse_any_head(head))


# --- memory -----------------------------------------------------------------------------------


@pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
def test_compiled_parser_does_not_leak():
    heads = [
        (b"GET / HTTP/1.1\r\nHost: h", LIMITS),
        (b"GET /a?b HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\nX-Y: caf\xe9\r\nEmpty:", LIMITS),
        (b"GET / HTTP/1.1" + b"\r\nX: y" * 100, LIMITS),  # the field table on the heap
        (b"GET / HTTP/1.1" + b"\r\nX: y" * 100 + b"\r\nX\x00: y", (4094, 8190, 200)),  # declined on the heap
        (b"GET / HTTP/1.1" + b"\r\nX: y" * 101, LIMITS),  # one field too many
        (b"GET /#a HTTP/1.1\r\nHost: h", LIMITS),
        (b"GET / HTTP/1.1\r\nHost: h\r\n\x00", LIMITS),
    ]

    def run(n):
        for _ in range(n):
            for head, limits in heads:
                plain_head_c(head, *limits)

    assert_no_leak(run)


@pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
def test_shared_objects_keep_their_reference_counts():
    """The method and common names are shared objects: a call that took one reference
    too many (or too few) would show in their counts, not in the memory in use."""
    head = b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\naccept: */*"
    first = plain_head_c(head, *LIMITS)
    shared = [first[0], *(n for n, _ in first[5]), *(n for n, _ in first[6])]
    assert plain_head_c(head, *LIMITS)[5][0][0] is shared[1]  # really shared
    before = [sys.getrefcount(obj) for obj in shared]
    for _ in range(1000):
        plain_head_c(head, *LIMITS)
        plain_head_c(head + b"\r\n\x00", *LIMITS)  # declined after the fields were seen
    del first
    assert [sys.getrefcount(obj) for obj in shared] == [count - 1 for count in before]


# --- simple_head: the RequestHead of a simple plain head, made in C ---------------------

simple_head_c = parser.simple_head_c
SIMPLE_HEADS = [
    b"GET / HTTP/1.1\r\nHost: h",
    b"GET /a/b?c=d&e HTTP/1.0\r\nHost: h",
    b"HEAD /x HTTP/1.1\r\nUser-Agent: u\r\nHost: h\r\nAccept: */*\r\nX-Y: caf\xe9",
    b"DELETE /x HTTP/1.1\r\nhost: h\r\nContent-Type: text/plain",  # one Content-Type is no framing
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket",  # Upgrade matters only with Connection
]


def fields_of(head: RequestHead) -> list:
    return [(name, getattr(head, name)) for name in RequestHead.__dataclass_fields__]


@pytest.mark.parametrize("impl", [
    pytest.param(parser.simple_head_py, id="py"),
    pytest.param(simple_head_c, id="c", marks=pytest.mark.skipif(simple_head_c is None, reason=NOT_BUILT)),
])
@pytest.mark.parametrize("head", SIMPLE_HEADS)
def test_simple_head_is_what_the_full_checks_build(impl, head):
    plain = plain_head_py(head, *LIMITS)
    assert plain[7] & parser._NEEDS_CHECKS == SPECIAL_HOST
    got = impl(plain)
    assert type(got) is RequestHead
    assert fields_of(got) == fields_of(RequestParser()._parse_any_head(head))
    assert got.version is parser._VERSIONS[plain[4]] and got.raw_headers is plain[5]
    assert type(got.headers) is type(RequestParser()._parse_any_head(head).headers)


@pytest.mark.skipif(simple_head_c is None, reason=NOT_BUILT)
def test_compiled_simple_head_is_the_parsers():
    assert parser.simple_head is simple_head_c
    [head, _] = RequestParser().feed(b"GET /p?q HTTP/1.1\r\nHost: h\r\n\r\n")
    head.path = "/changed"  # an ordinary, writable RequestHead
    assert head.path == "/changed" and "changed" in repr(head)


@pytest.mark.skipif(simple_head_c is None, reason=NOT_BUILT)
@pytest.mark.parametrize("plain, error", [
    (None, TypeError),
    (("GET", "/", "/", "", 1, [], []), TypeError),  # 7 items
    (["GET", "/", "/", "", 1, [], [], 1], TypeError),  # a list
    (("GET", "/", "/", "", 2, [], [], 1), ValueError),  # HTTP/1.2
    (("GET", "/", "/", "", "1", [], [], 1), TypeError),
    (("GET", "/", "/", "", 1, [], 5, 1), TypeError),  # CIMultiDict(5)
])
def test_compiled_simple_head_checks_its_argument(plain, error):
    with pytest.raises(error):
        simple_head_c(plain)


@pytest.mark.skipif(simple_head_c is None, reason=NOT_BUILT)
def test_set_head_types_takes_only_a_slots_class_with_the_head_fields():
    chead = importlib.import_module("server.protocol._chead")
    from dataclasses import dataclass

    from multidict import CIMultiDict

    class Plain:
        pass

    @dataclass(slots=True)
    class Partial:
        method: str

    @dataclass(slots=True)
    class WithPostInit:
        method: str

        def __post_init__(self):
            pass

    for bad in (Plain, Partial, WithPostInit):
        with pytest.raises(TypeError):
            chead.set_head_types(bad, CIMultiDict, parser._VERSIONS)
    with pytest.raises(TypeError):
        chead.set_head_types(RequestHead, CIMultiDict, ((1, 0),))
    assert parser.simple_head(plain_head_c(b"GET / HTTP/1.1\r\nHost: h", *LIMITS)).method == "GET"  # unchanged


@pytest.mark.skipif(simple_head_c is None, reason=NOT_BUILT)
def test_simple_head_before_set_head_types_is_an_error():
    code = ("import pytest, server.protocol._chead as c\n"
            "try:\n"
            "    c.simple_head(('GET', '/', '/', '', 1, [], [], 1))\n"
            "except RuntimeError as exc:\n"
            "    assert 'set_head_types' in str(exc)\n"
            "else:\n"
            "    raise SystemExit('no error')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(simple_head_c is None, reason=NOT_BUILT)
def test_compiled_simple_head_does_not_leak():
    plains = [plain_head_c(head[:-4] if head.endswith(b"\r\n\r\n") else head, *LIMITS) for head in SIMPLE_HEADS]
    shared = [parser._VERSIONS[0], parser._VERSIONS[1], plains[0][0], plains[0][5]]

    def run(n):
        for _ in range(n):
            for plain in plains:
                simple_head_c(plain)

    assert_no_leak(run, shared)
