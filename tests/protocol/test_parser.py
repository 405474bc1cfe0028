"""Sans-IO tests of the request parser (server/protocol/parser.py): bytes in, events out.

Most tests are data: a table of raw requests and the status (or head) they must give.
Every raw request is parsed both in one piece and one byte at a time, since the parser
promises the same events however the bytes are split.

The first part replays gunicorn's request corpus (tests/data/corpus/, see its README.md)
at the parser level.
"""

import base64
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from helpers import load_corpus
from server.protocol.errors import HttpError
from server.protocol.events import Data, EndOfMessage, RequestHead
from server.protocol.limits import (
    DEFAULT_FIELD_SIZE,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    UNLIMITED_REQUEST_LINE,
    Limits,
)
from server.protocol.parser import RequestParser
from server.workers.config import limits_from_gunicorn

# --- helpers ---------------------------------------------------------------------------


def msg(start: bytes, *fields: bytes, body: bytes = b"") -> bytes:
    """A request: start line, field lines, the empty line, then ``body`` as it is."""
    return b"".join(line + b"\r\n" for line in (start, *fields)) + b"\r\n" + body


def chunked(*chunk_lines: bytes, start: bytes = b"POST / HTTP/1.1") -> bytes:
    """A chunked request whose body is ``chunk_lines`` joined by CRLF (the caller frames it)."""
    return msg(start, b"Host: x", b"Transfer-Encoding: chunked", body=b"\r\n".join(chunk_lines))


def whole(raw: bytes) -> list[bytes]:
    return [raw]


def every(n: int):
    def split(raw: bytes) -> list[bytes]:
        return [raw[i : i + n] for i in range(0, len(raw), n)]

    split.__name__ = f"every_{n}"
    return split


def cut(raw: bytes, offsets) -> list[bytes]:
    bounds = [0, *sorted(set(o for o in offsets if 0 < o < len(raw))), len(raw)]
    return [raw[a:b] for a, b in zip(bounds, bounds[1:])]


def after_crlf(raw: bytes) -> list[bytes]:
    return cut(raw, [i + 2 for i in range(len(raw)) if raw.startswith(b"\r\n", i)])


def inside_crlf(raw: bytes) -> list[bytes]:
    """Split between every CR and its LF: the CR arrives alone."""
    return cut(raw, [i + 1 for i in range(len(raw)) if raw.startswith(b"\r\n", i)])


SPLITS = [whole, every(1), every(2), every(3), every(7), after_crlf, inside_crlf]


@dataclass
class Message:
    head: RequestHead
    data: list = field(default_factory=list)  # Data events
    end: EndOfMessage | None = None

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def body(self) -> bytes:
        return b"".join(d.data for d in self.data)

    @property
    def chunks(self) -> tuple:
        """The body grouped by ``end_of_chunk`` (last group: bytes after the last chunk end)."""
        groups, current = [], b""
        for d in self.data:
            current += d.data
            if d.end_of_chunk:
                groups.append(current)
                current = b""
        return (*groups, current)

    @property
    def trailers(self):
        return None if self.end is None or self.end.trailers is None else tuple(self.end.trailers.items())

    def key(self) -> tuple:
        h = self.head
        head = (h.method, h.target, h.path, h.query, h.version, tuple(h.raw_headers),
                h.keep_alive, h.content_length, h.chunked, h.expect_continue, h.upgrade)
        return head, self.chunks, self.trailers, self.complete


@dataclass
class Conversation:
    """What a connection's bytes amount to: messages, then how it ended.

    ``end`` is an error status (int), "close" (a request that does not keep the connection
    alive was complete: the server stops reading there) or "eof" (all bytes used, no error).
    """

    messages: list = field(default_factory=list)
    end: int | str | None = None

    def take(self, events: list) -> None:
        """Record events, checking their order: head, data..., end; nothing after the end."""
        for i, ev in enumerate(events):
            last = self.messages[-1] if self.messages else None
            if isinstance(ev, RequestHead):
                assert last is None or last.complete, "a head before the previous message ended"
                self.messages.append(Message(ev))
            elif isinstance(ev, Data):
                assert last is not None and not last.complete, "data outside a message"
                assert ev.data, "an empty Data event"
                last.data.append(ev)
            elif isinstance(ev, EndOfMessage):
                assert last is not None and not last.complete, "end outside a message"
                assert i == len(events) - 1, "the parser went on after EndOfMessage"
                last.end = ev
            else:
                raise AssertionError(f"unknown event {ev!r}")

    @property
    def complete(self) -> list:
        return [m for m in self.messages if m.complete]

    def key(self) -> tuple:
        """Complete messages and the end. (Events of the ``feed`` call that raised an error are
        lost with it, so what an unfinished message had yielded depends on the split.)"""
        return tuple(m.key() for m in self.complete), self.end


def converse(pieces, limits: Limits = Limits()) -> Conversation:
    """Feed ``pieces`` to one parser as a server would: after each complete request, go on
    to the next one only if it keeps the connection alive; at the end, ``feed_eof``."""
    parser = RequestParser(limits)
    conv = Conversation()
    try:
        for piece in pieces:
            conv.take(parser.feed(piece))
            while parser.done:
                if not conv.messages[-1].head.keep_alive:
                    conv.end = "close"
                    return conv
                conv.take(parser.next_request())
        parser.feed_eof()
    except HttpError as exc:
        conv.end = exc.status
        return conv
    conv.end = "eof"
    return conv


def parse(raw: bytes, limits: Limits = Limits()) -> Conversation:
    """Parse ``raw`` in one piece; check that one byte at a time gives the very same."""
    conv = converse([raw], limits)
    bytewise = converse(every(1)(raw), limits)
    assert bytewise.key() == conv.key(), (
        f"one byte at a time: {bytewise.end!r} after {len(bytewise.complete)} requests; "
        f"all at once: {conv.end!r} after {len(conv.complete)}")
    return conv


def outcome(raw: bytes, limits: Limits = Limits()):
    """The error status of ``raw``, or "ok" if every request in it was complete and valid."""
    conv = parse(raw, limits)
    if isinstance(conv.end, int):
        return conv.end
    assert conv.messages and all(m.complete for m in conv.messages)
    return "ok"


def head_of(raw: bytes, limits: Limits = Limits()) -> RequestHead:
    conv = parse(raw, limits)
    assert not isinstance(conv.end, int), f"rejected with {conv.end}"
    return conv.messages[0].head


def error_during(feeds, limits: Limits = Limits()) -> tuple[int, int | None]:
    """Feed pieces one by one (no EOF); return (index of the piece that raised, status)."""
    parser = RequestParser(limits)
    for i, piece in enumerate(feeds):
        try:
            parser.feed(piece)
        except HttpError as exc:
            return i, exc.status
    return len(feeds), None


# --- the corpus, replayed at the parser level ----------------------------------------------

CASES = load_corpus()


def corpus_outcomes(case) -> list:
    alts = case.get("alt", [])
    alts = alts if isinstance(alts, list) else [alts]
    return [("expect", {"expect": case["expect"], "requests": case.get("requests")})] + [
        (f"alt:{a['expect']}", a) for a in alts
    ]


def persists(req: dict) -> bool:
    """Does this corpus request keep the connection open? (from its own data, RFC 9112 s9.3)"""
    tokens = {t.strip().lower() for name, value in req["headers"] if name == "CONNECTION"
              for t in value.split(",")}
    if "close" in tokens:
        return False
    return req["version"] == "HTTP/1.1" or "keep-alive" in tokens


def conversation(requests: list) -> list:
    """The expected requests a server reads: none after one that does not keep the connection
    alive. (At the server level an HTTP/1.0 request without keep-alive closes the connection,
    so bytes after it are never parsed: valid/019's second request, HTTP/1.1 without Host,
    which this parser would rightly reject, is not part of the conversation.)"""
    for i, req in enumerate(requests):
        if not persists(req):
            return requests[: i + 1]
    return requests


def without_underscores(pairs) -> list:
    """Header pairs whose names have no "_" (dropping those is the WSGI layer's job)."""
    return [(n.upper(), v) for n, v in pairs if "_" not in n]


def request_mismatch(msg_: Message, req: dict) -> str | None:
    h = msg_.head
    got_headers = without_underscores((n.decode("ascii"), v.decode("latin-1")) for n, v in h.raw_headers)
    checks = [
        ("method", h.method, req["method"]),
        ("target", h.target, req["target"]),
        ("query", h.query, req["query"]),
        ("version", "HTTP/%d.%d" % h.version, req["version"]),
        ("headers", got_headers, without_underscores(tuple(p) for p in req["headers"])),
        ("body", msg_.body, base64.b64decode(req["body"])),
    ]
    if req["path"] is not None:
        checks.append(("path", h.path, req["path"]))
    if "trailers" in req:
        got = [(k.upper(), v) for k, v in msg_.trailers or ()]
        checks.append(("trailers", got, [tuple(p) for p in req["trailers"]]))
    return next((f"{what}: got {got!r}, expected {want!r}" for what, got, want in checks if got != want), None)


def corpus_mismatch(conv: Conversation, expected: dict) -> str | None:
    kind = expected["expect"]
    done = conv.complete
    if kind == "valid":
        if isinstance(conv.end, int):
            return f"rejected with {conv.end} after {len(done)} requests"
        reqs = conversation(expected["requests"])
        if len(done) != len(reqs):
            return f"{len(done)} requests parsed, expected {len(reqs)}"
        return next((f"request {i}: {why}" for i, (m, r) in enumerate(zip(done, reqs))
                     if (why := request_mismatch(m, r))), None)
    if kind == "invalid":
        prefix = expected.get("valid_prefix", 0)
        if not isinstance(conv.end, int):
            return f"accepted ({len(done)} requests, end {conv.end!r})"
        if not 400 <= conv.end < 600 or len(done) != prefix:
            return f"status {conv.end} after {len(done)} complete requests, expected an error after {prefix}"
        return None
    if kind == "accepted":
        return None if done else f"no request accepted (end {conv.end!r})"
    raise AssertionError(f"unknown expectation {kind}")


def corpus_params(only_default: bool) -> list:
    params = []
    for case in CASES:
        reason = None
        if only_default and "config" in case:
            reason = f"needs non-default gunicorn settings {case['config']}"
        elif only_default and case.get("skip"):
            reason = case["skip"]
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(case, id=case["name"], marks=marks))
    return params


@pytest.mark.parametrize("case", corpus_params(only_default=False))
def test_corpus_same_events_however_split(case):
    """Any split of the bytes gives the same heads, body chunks, trailers and end (or status).
    Configuration-dependent cases are included: the property does not depend on settings."""
    raw = base64.b64decode(case["raw"])
    reference = converse([raw]).key()
    differing = {split.__name__: converse(split(raw)).key() for split in SPLITS[1:]}
    differing = {name: key for name, key in differing.items() if key != reference}
    assert not differing, (
        f"all at once: end {reference[1]!r} after {len(reference[0])} messages; "
        + "; ".join(f"{name}: end {key[1]!r} after {len(key[0])} messages" for name, key in differing.items())
    )


@pytest.mark.parametrize("case", corpus_params(only_default=True))
def test_corpus_case(case):
    """Default-configuration cases meet their `expect` or one of their `alt` outcomes."""
    conv = converse([base64.b64decode(case["raw"])])
    reasons = []
    for label, expected in corpus_outcomes(case):
        why = corpus_mismatch(conv, expected)
        if why is None:
            return
        reasons.append(f"{label}: {why}")
    pytest.fail("no acceptable outcome:\n  " + "\n  ".join(reasons))


# --- framing (server/protocol/framing.py) -------------------------------------------------

H = b"Host: x"
POST = b"POST / HTTP/1.1"
CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"

FRAMING = [
    # Content-Length: one field of plain digits, at most 18 of them
    ("cl_plus_sign", msg(POST, H, b"Content-Length: +5", body=b"hello"), 400),
    ("cl_minus_sign", msg(POST, H, b"Content-Length: -5", body=b"hello"), 400),
    ("cl_list", msg(POST, H, b"Content-Length: 5, 5", body=b"hello"), 400),
    ("cl_repeated", msg(POST, H, b"Content-Length: 5", b"Content-Length: 5", body=b"hello"), 400),
    ("cl_empty", msg(POST, H, b"Content-Length:", body=b"hello"), 400),
    ("cl_hex", msg(POST, H, b"Content-Length: 0x5", body=b"hello"), 400),
    ("cl_inner_space", msg(POST, H, b"Content-Length: 1 0", body=b"hello"), 400),
    ("cl_19_digits", msg(POST, H, b"Content-Length: " + b"0" * 18 + b"5", body=b"hello"), 400),
    ("cl_18_digits", msg(POST, H, b"Content-Length: " + b"0" * 17 + b"5", body=b"hello"), "ok"),
    ("cl_unicode_digit", msg(POST, H, "Content-Length: \u0665".encode("utf-8"), body=b"hello"), 400),
    # Transfer-Encoding
    ("te_and_cl", msg(POST, H, b"Content-Length: 5", b"Transfer-Encoding: chunked", body=CHUNKED_BODY), 400),
    ("te_http10", msg(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked", body=CHUNKED_BODY), 400),
    ("te_chunked_chunked", msg(POST, H, b"Transfer-Encoding: chunked, chunked", body=CHUNKED_BODY), 400),
    ("te_chunked_twice", msg(POST, H, b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked",
                             body=CHUNKED_BODY), 400),
    ("te_chunked_gzip", msg(POST, H, b"Transfer-Encoding: chunked, gzip", body=CHUNKED_BODY), 400),
    ("te_gzip_chunked", msg(POST, H, b"Transfer-Encoding: gzip, chunked", body=CHUNKED_BODY), 501),
    ("te_gzip_then_chunked_fields", msg(POST, H, b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked",
                                        body=CHUNKED_BODY), 501),
    ("te_identity_chunked", msg(POST, H, b"Transfer-Encoding: identity, chunked", body=CHUNKED_BODY), 501),
    ("te_identity", msg(POST, H, b"Transfer-Encoding: identity", body=b""), 400),  # chunked not last
    ("te_gzip", msg(POST, H, b"Transfer-Encoding: gzip", body=b""), 400),
    ("te_empty_value", msg(POST, H, b"Transfer-Encoding:", body=CHUNKED_BODY), 400),
    ("te_empty_coding_after", msg(POST, H, b"Transfer-Encoding: chunked,", body=CHUNKED_BODY), 400),
    ("te_empty_coding_before", msg(POST, H, b"Transfer-Encoding: , chunked", body=CHUNKED_BODY), 400),
    ("te_chunked_mixed_case", msg(POST, H, b"Transfer-Encoding: ChUnKeD", body=CHUNKED_BODY), "ok"),
]


@pytest.mark.parametrize("raw, expected", [pytest.param(r, e, id=i) for i, r, e in FRAMING])
def test_framing(raw, expected):
    assert outcome(raw) == expected


@pytest.mark.parametrize("field_line, length, is_chunked", [
    (None, 0, False),
    (b"Content-Length: 0", 0, False),
    (b"Content-Length: 007", 7, False),
    (b"Transfer-Encoding: chunked", None, True),
    (b"Transfer-Encoding: \tchunked\t", None, True),
])
def test_framing_of_accepted_heads(field_line, length, is_chunked):
    fields = [H] + ([field_line] if field_line else [])
    body = CHUNKED_BODY if is_chunked else b"x" * length
    head = head_of(msg(POST, *fields, body=body))
    assert (head.content_length, head.chunked, head.has_body) == (length, is_chunked, bool(body))


# --- chunked bodies -----------------------------------------------------------------------

CHUNKED_ERRORS = [
    ("size_not_hex", chunked(b"g", b"hello", b"0", b"", b""), 400),
    ("size_hex_then_junk", chunked(b"5x", b"hello", b"0", b"", b""), 400),
    ("size_0x_prefix", chunked(b"0x5", b"hello", b"0", b"", b""), 400),
    ("size_plus_sign", chunked(b"+5", b"hello", b"0", b"", b""), 400),
    ("size_minus_sign", chunked(b"-5", b"hello", b"0", b"", b""), 400),
    ("size_17_hex_digits", chunked(b"0" * 16 + b"5", b"hello", b"0", b"", b""), 400),
    ("size_leading_space", chunked(b" 5", b"hello", b"0", b"", b""), 400),
    ("size_trailing_space", chunked(b"5 ", b"hello", b"0", b"", b""), 400),
    ("size_empty", chunked(b"", b"hello", b"0", b"", b""), 400),
    ("size_bare_lf", chunked(b"5\nhello", b"0", b"", b""), 400),
    ("size_bare_cr", chunked(b"5\rhello", b"0", b"", b""), 400),
    ("ext_without_name", chunked(b"5;", b"hello", b"0", b"", b""), 400),
    ("ext_without_value", chunked(b"5;a=", b"hello", b"0", b"", b""), 400),
    ("ext_unterminated_quote", chunked(b'5;a="x', b"hello", b"0", b"", b""), 400),
    ("ext_line_too_long", chunked(b"5;a=" + b"b" * 4100, b"hello", b"0", b"", b""), 400),
    ("data_without_crlf", chunked(b"5", b"helloX0", b"", b""), 400),
    ("data_with_bare_lf", msg(POST, H, b"Transfer-Encoding: chunked", body=b"5\r\nhello\n0\r\n\r\n"), 400),
    ("data_longer_than_size", chunked(b"3", b"hello", b"0", b"", b""), 400),
    ("last_chunk_then_eof", chunked(b"5", b"hello", b"0", b""), 400),
    ("trailer_obs_fold", chunked(b"0", b"X-A: 1", b" 2", b"", b""), 400),
    ("trailer_bare_cr", chunked(b"0", b"X-A: 1\rX-B: 2", b"", b""), 400),
    ("trailer_bare_lf", chunked(b"0", b"X-A: 1\nX-B: 2", b"", b""), 400),
    ("trailer_no_colon", chunked(b"0", b"X-A", b"", b""), 400),
    ("too_many_trailers", chunked(b"0", *[b"X-%d: v" % i for i in range(101)], b"", b""), 431),
    ("trailer_too_large", chunked(b"0", b"X-A: " + b"v" * 8190, b"", b""), 431),
]


@pytest.mark.parametrize("raw, expected", [pytest.param(r, e, id=i) for i, r, e in CHUNKED_ERRORS])
def test_chunked_errors(raw, expected):
    assert outcome(raw) == expected


@pytest.mark.parametrize("name", [
    "Content-Length", "Transfer-Encoding", "Host", "Authorization", "Content-Type",
    "Trailer", "Expect", "Connection", "set-cookie", "CONTENT-ENCODING",
])
def test_forbidden_trailer_fields(name):
    raw = chunked(b"5", b"hello", b"0", name.encode() + b": 1", b"", b"")
    assert outcome(raw) == 400


CHUNKED_ACCEPTED = [
    ("plain", [b"5", b"hello", b"0"], [b"hello"]),
    ("upper_hex", [b"A", b"0123456789", b"0"], [b"0123456789"]),
    ("leading_zeros_16_digits", [b"0" * 15 + b"5", b"hello", b"0"], [b"hello"]),
    ("ext_token", [b"5;a=b;c", b"hello", b"0"], [b"hello"]),
    ("ext_bws", [b"5 ; a = b\t;\tc", b"hello", b"0"], [b"hello"]),
    ("ext_quoted", [b'5;a="b c;d=\\"e\\""', b"hello", b"0"], [b"hello"]),
    ("ext_on_last_chunk", [b"5", b"hello", b"0;done"], [b"hello"]),
    ("two_chunks", [b"5", b"hello", b"6", b" world", b"0"], [b"hello", b" world"]),
]


@pytest.mark.parametrize("lines, chunks", [pytest.param(l, c, id=i) for i, l, c in CHUNKED_ACCEPTED])
def test_chunked_accepted(lines, chunks):
    conv = parse(chunked(*lines, b"", b""))
    assert conv.end == "eof"
    (message,) = conv.messages
    assert message.chunks == (*chunks, b"") and message.trailers is None


def test_largest_chunk_size_accepted_without_a_cap():
    conv = parse(chunked(b"ffffffffffffffff", b"x"))
    assert conv.end == 400  # EOF in the middle of a huge chunk, not 413
    assert conv.messages[0].body == b"x"


# --- the request head --------------------------------------------------------------------

GET11 = b"GET / HTTP/1.1"

HEAD_ERRORS = [
    # line endings
    ("bare_cr_in_field", msg(GET11, b"Host: x\rX-A: 1"), 400),
    ("bare_cr_in_request_line", msg(b"GET /\r HTTP/1.1", H), 400),
    ("bare_cr_end_of_line", msg(GET11, b"Host: x\r"), 400),
    ("bare_lf_request_line", b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400),
    ("bare_lf_field", b"GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", 400),
    ("bare_lf_end_of_head", b"GET / HTTP/1.1\r\nHost: x\r\n\n", 400),
    ("leading_bare_lf", b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    # field lines
    ("obs_fold", msg(GET11, H, b"X-A: 1", b" 2"), 400),
    ("obs_fold_tab", msg(GET11, H, b"X-A: 1", b"\t2"), 400),
    ("first_line_folded", msg(GET11, b" Host: x"), 400),
    ("space_before_colon", msg(GET11, b"Host : x"), 400),
    ("tab_before_colon", msg(GET11, b"Host\t: x"), 400),
    ("no_colon", msg(GET11, H, b"X-A 1"), 400),
    ("empty_name", msg(GET11, H, b": 1"), 400),
    ("name_with_space", msg(GET11, H, b"X A: 1"), 400),
    ("name_with_paren", msg(GET11, H, b"X(A): 1"), 400),
    ("name_with_slash", msg(GET11, H, b"X/A: 1"), 400),
    ("name_non_ascii", msg(GET11, H, b"X\xe9: 1"), 400),
    ("nul_in_value", msg(GET11, H, b"X-A: a\x00b"), 400),
    ("bel_in_value", msg(GET11, H, b"X-A: a\x07b"), 400),
    ("del_in_value", msg(GET11, H, b"X-A: a\x7fb"), 400),
    ("vt_in_value", msg(GET11, H, b"X-A: a\x0bb"), 400),
    ("esc_in_value", msg(GET11, H, b"X-A: a\x1bb"), 400),
    # request line
    ("double_space_after_method", msg(b"GET  / HTTP/1.1", H), 400),
    ("double_space_before_version", msg(b"GET /  HTTP/1.1", H), 400),
    ("trailing_space", msg(b"GET / HTTP/1.1 ", H), 400),
    ("leading_space", msg(b" GET / HTTP/1.1", H), 400),
    ("tab_separator", msg(b"GET\t/ HTTP/1.1", H), 400),
    ("no_version", msg(b"GET /", H), 400),
    ("method_only", msg(b"GET", H), 400),
    ("method_not_token", msg(b"GE(T / HTTP/1.1", H), 400),
    ("method_non_ascii", msg(b"G\xc9T / HTTP/1.1", H), 400),
    ("version_lowercase", msg(b"GET / http/1.1", H), 400),
    ("version_two_digit_minor", msg(b"GET / HTTP/1.10", H), 400),
    ("version_no_minor", msg(b"GET / HTTP/1", H), 400),
    ("version_junk", msg(b"GET / HTTP/1.1x", H), 400),
    ("version_2_0", msg(b"GET / HTTP/2.0", H), 505),
    ("version_0_9", msg(b"GET / HTTP/0.9", H), 505),
    ("version_3_0", msg(b"GET / HTTP/3.0", H), 505),
    # Host, Content-Type, Expect
    ("http11_without_host", msg(GET11), 400),
    ("two_hosts", msg(GET11, H, b"Host: y"), 400),
    ("two_hosts_http10", msg(b"GET / HTTP/1.0", H, b"Host: y"), 400),
    ("two_content_types", msg(GET11, H, b"Content-Type: a/b", b"Content-Type: a/b"), 400),
    ("expect_other", msg(GET11, H, b"Expect: something"), 417),
    ("expect_list", msg(GET11, H, b"Expect: 100-continue, other"), 417),
    ("expect_other_http10", msg(b"GET / HTTP/1.0", b"Expect: something"), 417),
    # request targets
    ("connect", msg(b"CONNECT example.com:443 HTTP/1.1", b"Host: example.com:443"), 501),
    ("connect_origin_form", msg(b"CONNECT / HTTP/1.1", H), 501),
    ("asterisk_with_get", msg(b"GET * HTTP/1.1", H), 400),
    ("authority_with_get", msg(b"GET example.com:80 HTTP/1.1", H), 400),
    ("relative_target", msg(b"GET a/b HTTP/1.1", H), 400),
    ("empty_target", msg(b"GET  HTTP/1.1", H), 400),
    ("userinfo", msg(b"GET http://user@example.com/ HTTP/1.1", H), 400),
    ("userinfo_with_password", msg(b"GET http://u:p@example.com/ HTTP/1.1", H), 400),
    ("other_scheme", msg(b"GET ftp://example.com/ HTTP/1.1", H), 400),
    ("fragment", msg(b"GET /a#b HTTP/1.1", H), 400),
    ("fragment_absolute", msg(b"GET http://x/a#b HTTP/1.1", H), 400),
    ("non_ascii_target", msg(b"GET /\xc3\xa9 HTTP/1.1", H), 400),
    ("non_ascii_absolute", msg(b"GET http://x/\xe9 HTTP/1.1", H), 400),
    ("nul_in_target", msg(b"GET /\x00 HTTP/1.1", H), 400),
    ("del_in_target", msg(b"GET /\x7f HTTP/1.1", H), 400),
]


@pytest.mark.parametrize("raw, expected", [pytest.param(r, e, id=i) for i, r, e in HEAD_ERRORS])
def test_head_errors(raw, expected):
    assert outcome(raw) == expected


@pytest.mark.parametrize("method", [b"get", b"-bl", b"M-SEARCH", b"PROPFIND", b"!#$%&'*+-.^_`|~0aZ"])
def test_odd_token_methods_are_accepted(method):
    assert head_of(msg(method + b" / HTTP/1.1", H)).method == method.decode()


TARGETS = [
    # (method, target, path, query)
    (b"GET", b"/", "/", ""),
    (b"GET", b"/a/b?x=1&y", "/a/b", "x=1&y"),
    (b"GET", b"/a?", "/a", ""),
    (b"GET", b"/a?b?c", "/a", "b?c"),
    (b"GET", b"/%7Ea%20b", "/%7Ea%20b", ""),  # still percent-encoded
    (b"GET", b'/with_"quotes"', '/with_"quotes"', ""),
    (b"OPTIONS", b"*", "*", ""),
    (b"GET", b"http://example.com/a/b?x=1", "/a/b", "x=1"),
    (b"GET", b"https://example.com", "/", ""),
    (b"GET", b"HTTP://Example.COM:8080?q=1", "/", "q=1"),
    (b"GET", b"http://example.com:/p", "/p", ""),
    (b"GET", b"http://[::1]:8080/foo", "/foo", ""),
]


@pytest.mark.parametrize("method, target, path, query", TARGETS)
def test_request_targets(method, target, path, query):
    head = head_of(msg(method + b" " + target + b" HTTP/1.1", H))
    assert (head.target, head.path, head.query) == (target.decode("latin-1"), path, query)


def test_head_fields_as_sent():
    raw = msg(b"GET / HTTP/1.1", b"Host: x", b"X-A:  \t spaced value\t ", b"x-a: 2",
              b"Empty:", b"Obs-Text: caf\xe9", b"X_Under: kept")
    head = head_of(raw)
    assert head.raw_headers == [(b"Host", b"x"), (b"X-A", b"spaced value"), (b"x-a", b"2"),
                                (b"Empty", b""), (b"Obs-Text", b"caf\xe9"), (b"X_Under", b"kept")]
    assert head.headers.getall("X-A") == ["spaced value", "2"]
    assert head.headers["obs-text"] == "caf\xe9"
    assert head.version == (1, 1)


def test_http10_needs_no_host():
    head = head_of(msg(b"GET / HTTP/1.0"))
    assert head.version == (1, 0) and "Host" not in head.headers


def test_leading_empty_lines_are_ignored():
    conv = parse(b"\r\n\r\n\r\n" + msg(GET11, H))
    assert conv.end == "eof" and [m.head.target for m in conv.complete] == ["/"]


@pytest.mark.parametrize("version, value, expect_continue", [
    (b"HTTP/1.1", b"100-continue", True),
    (b"HTTP/1.1", b"100-Continue", True),
    (b"HTTP/1.0", b"100-continue", False),  # RFC 9110 s10.1.1: ignored for HTTP/1.0
])
def test_expect_continue(version, value, expect_continue):
    raw = msg(b"POST / " + version, H, b"Expect: " + value, b"Content-Length: 2", body=b"hi")
    assert head_of(raw).expect_continue is expect_continue


def test_no_expect_no_continue():
    assert head_of(msg(GET11, H)).expect_continue is False


# --- limits ----------------------------------------------------------------------------------

SMALL = Limits(request_line=32, fields=3, field_size=28, body=10, chunk_line=12)
# field_size counts a field line with its CRLF, as gunicorn does: a 26-byte line is at the
# limit ("Transfer-Encoding: chunked" is exactly that), a 27-byte one is past it.


def line_of(n: int) -> bytes:
    """A request line of exactly ``n`` bytes."""
    fixed = len(b"GET / HTTP/1.0")
    return b"GET /" + b"a" * (n - fixed) + b" HTTP/1.0"


def field_of(n: int, name: bytes = b"X-A") -> bytes:
    """A field line of exactly ``n`` bytes."""
    return name + b": " + b"v" * (n - len(name) - 2)


LIMITS = [
    ("request_line_at_limit", msg(line_of(32)), "ok"),
    ("request_line_past_limit", msg(line_of(33)), 414),
    ("fields_at_limit", msg(line_of(20), *[field_of(8, b"X-%d" % i) for i in range(3)]), "ok"),
    ("fields_past_limit", msg(line_of(20), *[field_of(8, b"X-%d" % i) for i in range(4)]), 431),
    ("field_size_at_limit", msg(line_of(20), field_of(26)), "ok"),
    ("field_size_past_limit", msg(line_of(20), field_of(27)), 431),
    ("cl_at_body_cap", msg(b"POST / HTTP/1.0", b"Content-Length: 10", body=b"x" * 10), "ok"),
    ("cl_past_body_cap", msg(b"POST / HTTP/1.0", b"Content-Length: 11", body=b"x" * 11), 413),
    ("chunked_at_body_cap", chunked(b"4", b"abcd", b"6", b"efghij", b"0", b"", b""), "ok"),
    ("chunked_past_body_cap", chunked(b"4", b"abcd", b"7", b"efghijk", b"0", b"", b""), 413),
    ("chunk_line_at_limit", chunked(b"5;a=" + b"b" * 8, b"hello", b"0", b"", b""), "ok"),
    ("chunk_line_past_limit", chunked(b"5;a=" + b"b" * 9, b"hello", b"0", b"", b""), 400),
    ("trailer_size_at_limit", chunked(b"0", field_of(26), b"", b""), "ok"),
    ("trailer_size_past_limit", chunked(b"0", field_of(27), b"", b""), 431),
    ("trailers_at_limit", chunked(b"0", *[field_of(8, b"X-%d" % i) for i in range(3)], b"", b""), "ok"),
    ("trailers_past_limit", chunked(b"0", *[field_of(8, b"X-%d" % i) for i in range(4)], b"", b""), 431),
]


@pytest.mark.parametrize("raw, expected", [pytest.param(r, e, id=i) for i, r, e in LIMITS])
def test_limits(raw, expected):
    """Exactly at each bound is fine, one past it is refused: in one piece and byte by byte."""
    assert outcome(raw, SMALL) == expected


@pytest.mark.parametrize("partial, status", [
    (line_of(33), 414),  # request line, no CRLF yet
    (msg(line_of(20))[:-2] + field_of(27), 431),  # field line, no CRLF yet
    (msg(line_of(20))[:-2] + b"".join(field_of(8, b"X-%d" % i) + b"\r\n" for i in range(4)), 431),
    (chunked(b"5;a=" + b"b" * 9), 400),  # chunk-size line, no CRLF yet
    (chunked(b"0", field_of(27)), 431),  # trailer line, no CRLF yet
], ids=["request_line", "field_size", "fields", "chunk_line", "trailer_size"])
def test_limits_fail_before_the_line_ends(partial, status):
    """A line that is already too long is refused at the byte that crosses the limit."""
    assert error_during(every(1)(partial), SMALL) == (len(partial) - 1, status)


@pytest.mark.parametrize("partial", [
    line_of(32),
    line_of(32) + b"\r",
    msg(line_of(20))[:-2] + field_of(26),
    msg(line_of(20))[:-2] + field_of(26) + b"\r",
    chunked(b"5;a=" + b"b" * 8),
    chunked(b"5;a=" + b"b" * 8 + b"\r"),
    chunked(b"0", field_of(26)),
    chunked(b"0", field_of(26) + b"\r"),
], ids=["request_line", "request_line_cr", "field", "field_cr", "chunk_line", "chunk_line_cr",
        "trailer", "trailer_cr"])
def test_unfinished_lines_at_the_limit_are_not_refused(partial):
    """A line exactly at its limit may still be waiting for its CR or LF."""
    assert error_during(every(1)(partial), SMALL) == (len(partial), None)


def test_content_length_past_cap_refused_at_head_time():
    parser = RequestParser(SMALL)
    with pytest.raises(HttpError) as err:
        parser.feed(msg(b"POST / HTTP/1.0", b"Content-Length: 11"))  # no body sent yet
    assert err.value.status == 413


def test_chunked_past_cap_refused_at_the_chunk_size():
    parser = RequestParser(SMALL)
    events = parser.feed(chunked(b"4", b"abcd", b""))
    assert [type(e) for e in events] == [RequestHead, Data]
    with pytest.raises(HttpError) as err:
        parser.feed(b"7\r\n")  # the data of that chunk never arrives
    assert err.value.status == 413


def test_default_limits_are_gunicorns():
    assert Limits() == Limits(request_line=4094, fields=100, field_size=8190, body=0, chunk_line=4096)
    assert converse([msg(line_of(4094))]).end == "close"  # HTTP/1.0: complete, no keep-alive
    assert converse([msg(line_of(4095))]).end == 414


@pytest.mark.parametrize("line, fields, field_size, expected", [
    (4094, 100, 8190, (4094, 100, 8190)),  # gunicorn's defaults
    (0, 0, 0, (UNLIMITED_REQUEST_LINE, MAX_HEADERS, DEFAULT_FIELD_SIZE)),  # 0: unlimited / default
    (-1, -1, -1, (MAX_REQUEST_LINE, MAX_HEADERS, DEFAULT_FIELD_SIZE)),
    (MAX_REQUEST_LINE, MAX_HEADERS, 8190, (MAX_REQUEST_LINE, MAX_HEADERS, 8190)),
    (MAX_REQUEST_LINE + 1, MAX_HEADERS + 1, 20000, (MAX_REQUEST_LINE, MAX_HEADERS, 20000)),
    (1, 1, 1, (1, 1, 1)),
])
def test_limits_from_gunicorn(line, fields, field_size, expected):
    cfg = SimpleNamespace(limit_request_line=line, limit_request_fields=fields,
                          limit_request_field_size=field_size)
    limits = limits_from_gunicorn(cfg, body=123)
    assert (limits.request_line, limits.fields, limits.field_size) == expected
    assert limits.body == 123 and limits.chunk_line == Limits().chunk_line


# --- pipelining, end of input, connection options ------------------------------------------

def test_pipelined_requests_one_at_a_time():
    raw = msg(b"GET /1 HTTP/1.1", H) + msg(b"POST /2 HTTP/1.1", H, b"Content-Length: 3", body=b"abc") \
        + msg(b"GET /3 HTTP/1.1", H)
    parser = RequestParser()
    first = parser.feed(raw)
    assert [type(e) for e in first] == [RequestHead, EndOfMessage] and first[0].target == "/1"
    assert parser.done and not parser.in_message and parser.buffered == len(raw) - len(msg(b"GET /1 HTTP/1.1", H))
    second = parser.next_request()
    assert [type(e) for e in second] == [RequestHead, Data, EndOfMessage]
    assert second[0].target == "/2" and second[1].data == b"abc"
    third = parser.next_request()
    assert [type(e) for e in third] == [RequestHead, EndOfMessage] and third[0].target == "/3"
    assert parser.next_request() == [] and not parser.done and parser.buffered == 0


def _events_and_state(parser: RequestParser, data) -> tuple:
    try:
        events = parser.feed(data)
    except HttpError as exc:
        events = exc.status
    return events, parser.done, parser.in_message, parser.buffered


# Heads, and bytes that are not one plain head, each as one piece: what the one-head shortcuts
# take or decline, and what must come out as the buffered path gives it.
ONE_PIECE = [pytest.param(data, limits, id=name) for name, data, limits in [
    ("get", msg(GET11, H), Limits()),
    ("fields", msg(GET11, H, b"Connection: close", b"X-A: 1"), Limits()),
    ("content-length", msg(POST, H, b"Content-Length: 5"), Limits()),
    ("chunked", msg(POST, H, b"Transfer-Encoding: chunked"), Limits()),
    ("cl0", msg(GET11, H, b"Content-Length: 0"), Limits()),
    ("leading-crlf", b"\r\n" + msg(GET11, H), Limits()),
    ("blank-lines", b"\r\n\r\n", Limits()),
    ("http2", msg(b"GET / HTTP/2.0", H), Limits()),
    ("two-hosts", msg(GET11, H, H), Limits()),
    ("piece", b"GET", Limits()),
    ("no-host", b"GET / HTTP/1.1\r\n\r\n", Limits()),
    ("pipelined", msg(GET11, H) + msg(GET11, H), Limits()),
    ("with-body", msg(POST, H, b"Content-Length: 5", body=b"hello"), Limits()),
    ("line-at-limit", msg(line_of(32), H), Limits(request_line=32)),
    ("line-past-limit", msg(line_of(33), H), Limits(request_line=32)),
    ("field-at-limit", msg(GET11, H, field_of(30)), Limits(field_size=32)),
    ("field-past-limit", msg(GET11, H, field_of(31)), Limits(field_size=32)),
    ("fields-at-limit", msg(GET11, H, field_of(8)), Limits(fields=2)),
    ("fields-past-limit", msg(GET11, H, field_of(8), field_of(8)), Limits(fields=2)),
]]


@pytest.mark.parametrize("data, limits", ONE_PIECE)
def test_a_head_fed_whole_gives_what_the_buffer_gives(data, limits):
    """A piece that is exactly one head is parsed without the buffer: the same events,
    errors and parser state as the same bytes taken through it (a bytearray always is)."""
    direct = _events_and_state(RequestParser(limits), data)
    buffered = _events_and_state(RequestParser(limits), bytearray(data))
    assert direct == buffered if isinstance(direct[0], int) else _keys(direct) == _keys(buffered)


def _keys(result: tuple) -> tuple:
    events, *state = result
    keys = {RequestHead: lambda e: Message(e).key()[0], Data: lambda e: (e.data, e.end_of_chunk),
            EndOfMessage: lambda e: ("end", e.trailers)}
    return [keys[type(e)](e) for e in events], state


def test_feed_while_done_only_buffers():
    parser = RequestParser()
    parser.feed(msg(GET11, H))
    assert parser.done
    assert parser.feed(msg(b"GET /next HTTP/1.1", H)) == []
    assert parser.feed(b"garbage that is not parsed yet\n") == []  # no error either
    assert parser.done and parser.buffered > 0
    events = parser.next_request()
    assert events[0].target == "/next" and isinstance(events[-1], EndOfMessage)


def _waiting_then_next(data, limits: Limits = Limits()) -> tuple:
    """``data`` received while the request before is answered (the parser DONE), then parsed
    by ``next_request``: its events (or error status) and the parser's state."""
    parser = RequestParser(limits)
    parser.feed(msg(GET11, H))
    assert parser.feed(data) == [] and parser.done
    try:
        events = parser.next_request()
    except HttpError as exc:
        events = exc.status
    return events, parser.done, parser.in_message, parser.buffered


@pytest.mark.parametrize("data, limits", ONE_PIECE)
def test_a_request_waiting_for_next_request_gives_what_a_fresh_feed_gives(data, limits):
    """The bytes that came while the request before was answered give, at next_request, the
    events, errors and state that the same bytes fed to a fresh parser give."""
    waited = _waiting_then_next(data, limits)
    fresh = _events_and_state(RequestParser(limits), data)
    assert waited == fresh if isinstance(fresh[0], int) else _keys(waited) == _keys(fresh)


def test_one_whole_head_waiting_for_next_request_takes_the_shortcut(monkeypatch):
    """One whole head alone, received while the request before was answered (the next request
    of a client waiting for each answer, when a WSGI thread wrote that answer itself), is
    parsed by feed's shortcut for exactly one head, not line by line from the buffer; bytes
    holding more than one head still are."""
    steps = list(RequestParser._STEPS)
    read_head = steps[0]
    calls = []
    steps[0] = lambda parser, events: calls.append(1) or read_head(parser, events)
    monkeypatch.setattr(RequestParser, "_STEPS", tuple(steps))
    events = _waiting_then_next(msg(b"GET /next HTTP/1.1", H))[0]
    assert events[0].target == "/next" and isinstance(events[1], EndOfMessage) and calls == []
    events = _waiting_then_next(msg(b"GET /a HTTP/1.1", H) + msg(b"GET /b HTTP/1.1", H))[0]
    assert events[0].target == "/a" and calls


def test_next_request_before_the_end_is_an_error():
    parser = RequestParser()
    parser.feed(msg(POST, H, b"Content-Length: 5", body=b"he"))
    with pytest.raises(RuntimeError):
        parser.next_request()


@pytest.mark.parametrize("raw", [
    b"G",
    b"GET / HTTP/1.1\r\nHost: x\r\n",
    b"\r",
    msg(POST, H, b"Content-Length: 5", body=b"hell"),
    msg(POST, H, b"Content-Length: 5"),
    chunked(b"5", b"hel"),
    chunked(b"5", b"hello"),
    chunked(b"5", b"hello", b"0", b"X-A: 1"),
], ids=["method", "head", "cr", "body", "no_body_yet", "chunk", "chunk_crlf", "trailers"])
def test_eof_in_the_middle_of_a_request(raw):
    parser = RequestParser()
    parser.feed(raw)
    assert parser.in_message
    with pytest.raises(HttpError) as err:
        parser.feed_eof()
    assert err.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"\r\n\r\n", msg(GET11, H)], ids=["nothing", "empty_lines", "complete"])
def test_eof_between_requests(raw):
    parser = RequestParser()
    parser.feed(raw)
    assert not parser.in_message
    parser.feed_eof()  # no error


def test_parser_unusable_after_an_error():
    parser = RequestParser()
    with pytest.raises(HttpError):
        parser.feed(msg(b"GET / HTTP/2.0", H))
    assert parser.feed(msg(GET11, H)) == []


@pytest.mark.parametrize("version, connection, keep_alive", [
    (b"HTTP/1.1", [], True),
    (b"HTTP/1.1", [b"close"], False),
    (b"HTTP/1.1", [b"Close"], False),
    (b"HTTP/1.1", [b"keep-alive, close"], False),
    (b"HTTP/1.1", [b"foo", b"close"], False),
    (b"HTTP/1.1", [b"keep-alive"], True),
    (b"HTTP/1.0", [], False),
    (b"HTTP/1.0", [b"keep-alive"], True),
    (b"HTTP/1.0", [b"Keep-Alive"], True),
    (b"HTTP/1.0", [b"foo,keep-alive"], True),
    (b"HTTP/1.0", [b"keep-alive", b"close"], False),
])
def test_keep_alive(version, connection, keep_alive):
    raw = msg(b"GET / " + version, H, *[b"Connection: " + c for c in connection])
    assert head_of(raw).keep_alive is keep_alive


@pytest.mark.parametrize("fields, upgrade", [
    ([b"Connection: Upgrade", b"Upgrade: websocket"], True),
    ([b"Connection: keep-alive, upgrade", b"Upgrade: h2c"], True),
    ([b"Upgrade: websocket"], False),
    ([b"Connection: upgrade"], False),
    ([], False),
])
def test_upgrade(fields, upgrade):
    assert head_of(msg(GET11, H, *fields)).upgrade is upgrade


# --- body events -----------------------------------------------------------------------------

def test_content_length_body_pieces_are_not_chunk_ends():
    parser = RequestParser()
    events = parser.feed(msg(POST, H, b"Content-Length: 5", body=b"he"))
    events += parser.feed(b"llo")
    data = [e for e in events if isinstance(e, Data)]
    assert [(d.data, d.end_of_chunk) for d in data] == [(b"he", False), (b"llo", False)]
    assert isinstance(events[-1], EndOfMessage) and events[-1].trailers is None


def test_end_of_chunk_on_the_last_piece_of_each_chunk():
    parser = RequestParser()
    head = chunked()
    feeds = [head + b"3\r\nab", b"c\r\n5\r\nhel", b"lo\r\n", b"0\r\n\r\n"]
    got = [[(e.data, e.end_of_chunk) for e in parser.feed(f) if isinstance(e, Data)] for f in feeds]
    assert got == [[(b"ab", False)], [(b"c", True), (b"hel", False)], [(b"lo", True)], []]


def test_end_of_chunk_when_a_chunk_arrives_whole():
    conv = converse([chunked(b"3", b"abc", b"5", b"hello", b"0", b"", b"")])
    assert [(d.data, d.end_of_chunk) for d in conv.messages[0].data] == [(b"abc", True), (b"hello", True)]


@pytest.mark.parametrize("split", SPLITS, ids=lambda s: s.__name__)
def test_chunk_ends_survive_any_split(split):
    raw = chunked(b"3", b"abc", b"a;x=1", b"0123456789", b"1", b"z", b"0", b"", b"")
    conv = converse(split(raw))
    assert conv.end == "eof" and conv.messages[0].chunks == (b"abc", b"0123456789", b"z", b"")


def test_trailers_in_end_of_message():
    raw = chunked(b"5", b"hello", b"0", b"X-Checksum: abc", b"x-checksum: def", b"Vary: *", b"", b"")
    conv = parse(raw)
    (message,) = conv.messages
    trailers = message.end.trailers
    assert trailers.getall("X-CHECKSUM") == ["abc", "def"] and trailers["vary"] == "*"
    assert message.trailers == (("X-Checksum", "abc"), ("x-checksum", "def"), ("Vary", "*"))
    assert "X-Checksum" not in message.head.headers


def test_no_trailers_is_none():
    conv = parse(chunked(b"0", b"", b""))
    assert conv.messages[0].end.trailers is None and conv.messages[0].body == b""


@pytest.mark.parametrize("pieces", [
    [b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"],  # one piece: the whole-head path
    [b"POST / HTTP/1.1\r\nHost: h\r\n", b"Content-Length: 11\r\n\r\n"],  # the buffered path
])
def test_a_head_refused_for_its_body_size_leaves_the_parser_failed(pieces):
    """413 from the body cap: what follows on the connection is never parsed as a request."""
    parser = RequestParser(Limits(body=10))
    with pytest.raises(HttpError) as refused:
        for piece in pieces:
            parser.feed(piece)
    assert refused.value.status == 413
    assert parser.feed(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n") == []
