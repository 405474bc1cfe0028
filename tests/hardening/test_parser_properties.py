"""Property-based tests of the request parser and its chunked decoder (hypothesis).

    generated requests ──serialise──► bytes ──split at random points──► RequestParser
                                        └──mutate (flip, insert, delete, repeat, cut)──┘

Properties:

* any valid request (pipelined, with a Content-Length or chunked body, trailers, odd
  spacing) parses to exactly what was generated, however the bytes are split;
* any mutation of a valid request either parses to well-formed events (heads whose
  fields obey the grammar, bodies of their declared length) or raises an ``HttpError``
  with a status the parser documents; never another exception, never a hang (an alarm
  fails any feed still running after 10 s), and the outcome does not depend on how the
  bytes are split;
* the chunked decoder gives the exact body and chunk boundaries for any chunk sizes,
  extensions and trailers, and refuses any damage to the chunk framing with a 4xx;
* the fast path for plain heads accepts only what the full checks accept, identically,
  and its compiled and Python implementations agree on every head and every limit: the
  same result, and the same events and errors from a whole parser using either.

``HARDENING_LONG=1`` runs many more examples.
"""

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening_support import no_hang
from server.protocol.errors import HttpError
from server.protocol.events import Data, EndOfMessage, RequestHead
from server.protocol.limits import Limits
from server.protocol.parser import FORBIDDEN_TRAILERS, RequestParser, plain_head_c, plain_head_py

LONG = os.environ.get("HARDENING_LONG") == "1"
EXAMPLES = 2000 if LONG else 150
PARSER_STATUSES = {400, 413, 414, 417, 431, 501, 505}
SETTINGS = settings(max_examples=EXAMPLES, deadline=2000,  # generous: a shared 2-core machine
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE = re.compile(rb"[\x21-\x7e\x80-\xff]([\t \x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?|")
TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
FRAMING = {"host", "content-length", "transfer-encoding", "content-type", "expect", "connection",
           "upgrade"}

# --- strategies: valid requests ------------------------------------------------------

tokens = st.text(TCHARS, min_size=1, max_size=12)
path_chars = st.text("abcXYZ019-._~!$&'()*+,;=:@%/", max_size=20)
value_chars = st.binary(max_size=30).map(
    lambda b: bytes(c for c in b if c in b"\t " or 0x21 <= c <= 0x7E or c >= 0x80).strip(b" \t"))
ows = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t"])


@st.composite
def fields(draw):
    name = draw(tokens.filter(lambda n: n.lower() not in FRAMING and n.lower() not in FORBIDDEN_TRAILERS))
    return name.encode(), draw(value_chars), draw(ows), draw(ows)


@st.composite
def chunk_exts(draw):
    exts = draw(st.lists(st.tuples(tokens, st.one_of(st.none(), tokens,
                                                      st.text("abc ,;=", max_size=8).map(lambda s: f'"{s}"'))),
                         max_size=2))
    return b"".join(b";" + n.encode() + (b"" if v is None else b"=" + v.encode()) for n, v in exts)


@st.composite
def requests(draw):
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "X-CUSTOM"])
                  | tokens.filter(lambda m: m != "CONNECT"))  # CONNECT is refused (501)
    target = "/" + draw(path_chars)
    if draw(st.booleans()):
        target += "?" + draw(path_chars)
    version = draw(st.sampled_from([(1, 1), (1, 1), (1, 0)]))
    extra = draw(st.lists(fields(), max_size=6))
    body_kind = draw(st.sampled_from(["none", "length", "chunked"] if version == (1, 1) else ["none", "length"]))
    chunks = draw(st.lists(st.binary(min_size=1, max_size=40), max_size=5))
    return {
        "method": method, "target": target, "version": version, "fields": extra, "body_kind": body_kind,
        "chunks": chunks, "exts": [draw(chunk_exts()) for _ in chunks],
        "trailers": draw(st.lists(fields(), max_size=3)) if body_kind == "chunked" else [],
        "size_case": draw(st.sampled_from([b"%x", b"%X", b"%04x"])),
    }


def serialise(req: dict) -> bytes:
    lines = [b"%s %s HTTP/%d.%d" % (req["method"].encode(), req["target"].encode(), *req["version"]), b"Host: h"]
    lines += [name + b":" + pre + value + post for name, value, pre, post in req["fields"]]
    body = b"".join(req["chunks"]) if req["body_kind"] != "none" else b""
    if req["body_kind"] == "length":
        lines.append(b"Content-Length: %d" % len(body))
    elif req["body_kind"] == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        framed = [(req["size_case"] % len(c)) + ext + b"\r\n" + c + b"\r\n" for c, ext in zip(req["chunks"], req["exts"])]
        trailers = b"".join(n + b":" + pre + v + post + b"\r\n" for n, v, pre, post in req["trailers"])
        body = b"".join(framed) + b"0\r\n" + trailers + b"\r\n"
    if req["version"] == (1, 0):
        lines.append(b"Connection: keep-alive")  # so that pipelining goes on
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def splits(data: bytes):
    """Strategy: ``data`` cut at random points (one-byte pieces included)."""
    return st.lists(st.integers(0, len(data)), max_size=12).map(
        lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])])


# --- running the parser ---------------------------------------------------------------

def run(pieces) -> tuple[list, int | str]:
    with no_hang():
        return _run(pieces)


def _run(pieces) -> tuple[list, int | str]:
    """Feed pieces as a server would (next request only after a complete keep-alive one).

    Returns (messages, end): each message (head, body, chunk ends, trailers, complete);
    end is an error status, "close" or "eof". Checks the order of events on the way."""
    parser = RequestParser()
    messages: list = []

    def take(events):
        for i, ev in enumerate(events):
            if isinstance(ev, RequestHead):
                assert not messages or messages[-1]["complete"], "head inside a message"
                messages.append({"head": ev, "data": [], "trailers": None, "complete": False})
            elif isinstance(ev, Data):
                assert messages and not messages[-1]["complete"] and ev.data, "stray or empty Data"
                messages[-1]["data"].append(ev)
            elif isinstance(ev, EndOfMessage):
                assert messages and not messages[-1]["complete"] and i == len(events) - 1
                messages[-1]["complete"] = True
                messages[-1]["trailers"] = None if ev.trailers is None else list(ev.trailers.items())
            else:
                raise AssertionError(f"unknown event {ev!r}")

    try:
        for piece in pieces:
            take(parser.feed(piece))
            while parser.done:
                if not messages[-1]["head"].keep_alive:
                    return messages, "close"
                take(parser.next_request())
        parser.feed_eof()
    except HttpError as exc:
        assert exc.status in PARSER_STATUSES, f"undocumented status {exc.status}: {exc}"
        assert exc.message
        return messages, exc.status
    return messages, "eof"


def summary(messages, end) -> tuple:
    """What a server acts on: the complete messages (their heads, bodies, chunk ends,
    trailers) and how the connection ended."""
    out = []
    for m in messages:
        if not m["complete"]:
            continue
        h = m["head"]
        body = b"".join(d.data for d in m["data"])
        ends, pos = [], 0
        for d in m["data"]:
            pos += len(d.data)
            if d.end_of_chunk:
                ends.append(pos)
        out.append(((h.method, h.target, h.path, h.query, h.version, tuple(h.raw_headers), h.keep_alive,
                     h.content_length, h.chunked), body, tuple(ends), m["trailers"]))
    return tuple(out), end


def check_well_formed(messages) -> None:
    for m in messages:
        h = m["head"]
        assert TOKEN.fullmatch(h.method.encode())
        assert h.target and not any(c in h.target for c in "\r\n\x00 ")
        for name, value in h.raw_headers:
            assert TOKEN.fullmatch(name) and FIELD_VALUE.fullmatch(value), (name, value)
        assert not (h.chunked and h.content_length), "both framings"
        body = sum(len(d.data) for d in m["data"])
        if m["complete"] and not h.chunked:
            assert body == (h.content_length or 0)
        if not h.chunked:
            assert body <= (h.content_length or 0)
            assert not any(d.end_of_chunk for d in m["data"])


# --- properties -------------------------------------------------------------------------

@SETTINGS
@given(st.lists(requests(), min_size=1, max_size=3).flatmap(
    lambda reqs: st.tuples(st.just(reqs), splits(b"".join(map(serialise, reqs))))))
def test_valid_requests_parse_to_what_was_sent_however_split(case):
    reqs, pieces = case
    messages, end = run(pieces)
    assert end == "eof", f"refused with {end}: {b''.join(pieces)!r}"
    assert len(messages) == len(reqs) and all(m["complete"] for m in messages)
    check_well_formed(messages)
    for m, req in zip(messages, reqs):
        h = m["head"]
        assert (h.method, h.target, h.version) == (req["method"], req["target"], req["version"])
        sent = [(n, v) for n, v, _, _ in req["fields"]]
        got = [(n, v) for n, v in h.raw_headers if n.lower() not in
               (b"host", b"content-length", b"transfer-encoding", b"connection")]
        assert got == sent
        expected_body = b"".join(req["chunks"]) if req["body_kind"] != "none" else b""
        assert b"".join(d.data for d in m["data"]) == expected_body
        if req["body_kind"] == "chunked":
            ends = summary([m], end)[0][0][2]
            sizes = [len(c) for c in req["chunks"]]
            assert list(ends) == [sum(sizes[:i + 1]) for i in range(len(sizes))]
            want = [(n.decode(), v.decode("latin-1")) for n, v, _, _ in req["trailers"]]
            assert (m["trailers"] or []) == want
    assert summary(messages, end) == summary(*run([b"".join(pieces)]))


INTERESTING = b"\r\n\x00 \t:;,=\"-+0123456789aAfFzZ\x7f\x80\xff"


@st.composite
def mutated(draw):
    """A valid request (or two), then one to three mutations."""
    data = bytearray(b"".join(map(serialise, draw(st.lists(requests(), min_size=1, max_size=2)))))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "cut", "replace"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from([bytes([c]) for c in INTERESTING]) | st.binary(min_size=1, max_size=3))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 4))]
        elif kind == "repeat":
            n = draw(st.integers(1, 40))
            data[pos:pos] = data[pos:pos + n]
        elif kind == "cut":
            del data[pos:]
        elif kind == "replace" and data:
            data[pos] = draw(st.sampled_from(INTERESTING))
    return bytes(data)


@SETTINGS
@given(mutated().flatmap(lambda data: st.tuples(st.just(data), splits(data))))
def test_mutated_requests_parse_well_formed_or_fail_with_their_status(case):
    data, pieces = case
    messages, end = run(pieces)
    check_well_formed(messages)
    whole = run([data])
    # The same outcome whatever the split: same complete messages, and an error either way.
    got, want = summary(messages, end), summary(*whole)
    assert got[0] == want[0], f"split-dependent parse of {data!r}"
    assert isinstance(got[1], int) == isinstance(want[1], int), (got[1], want[1], data)


# --- the chunked decoder on its own ------------------------------------------------------

@st.composite
def chunked_bodies(draw):
    chunks = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
    exts = [draw(chunk_exts()) for _ in chunks]
    trailers = draw(st.lists(fields(), max_size=3))
    framed = b"".join(b"%x%s\r\n%s\r\n" % (len(c), e, c) for c, e in zip(chunks, exts))
    tail = b"".join(n + b":" + pre + v + post + b"\r\n" for n, v, pre, post in trailers)
    return chunks, framed + (b"0%s\r\n" % draw(chunk_exts())) + tail + b"\r\n"


CHUNKED_HEAD = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


@SETTINGS
@given(chunked_bodies().flatmap(lambda cb: st.tuples(st.just(cb), splits(CHUNKED_HEAD + cb[1]))))
def test_chunked_bodies_decode_exactly_however_split(case):
    (chunks, _), pieces = case
    messages, end = run(pieces)
    assert end == "eof" and len(messages) == 1 and messages[0]["complete"]
    data = messages[0]["data"]
    assert b"".join(d.data for d in data) == b"".join(chunks)
    sizes, pos, ends = [len(c) for c in chunks], 0, []
    for d in data:
        pos += len(d.data)
        if d.end_of_chunk:
            ends.append(pos)
    assert ends == [sum(sizes[:i + 1]) for i in range(len(sizes))]


@SETTINGS
@given(chunked_bodies(), st.data())
def test_damaged_chunk_framing_is_refused_with_a_4xx(body, data):
    """Damage a byte of the chunk framing itself (a size digit, a CRLF or the final CRLF):
    the decoder refuses it, or reads a body that is still framed consistently."""
    chunks, framed = body
    framing_positions = _framing_positions(chunks, framed)
    pos = data.draw(st.sampled_from(framing_positions))
    replacement = data.draw(st.sampled_from([b"", b"\n", b"\r", b"\x00", b" ", b"g", b"-", b"\r\n\r\n", b"0"]))
    damaged = framed[:pos] + replacement + framed[pos + 1:]
    pieces = data.draw(splits(CHUNKED_HEAD + damaged))
    messages, end = run(pieces)
    check_well_formed(messages)
    if isinstance(end, int):
        assert 400 <= end < 500, end
    else:  # still a valid chunked body (e.g. "a" became "A"): it decodes to its own length
        assert summary(messages, end) == summary(*run([CHUNKED_HEAD + damaged]))


def _framing_positions(chunks, framed: bytes) -> list[int]:
    """Offsets in ``framed`` that belong to chunk-size lines and the CRLFs after chunk data."""
    positions, pos = [], 0
    for c in chunks:
        line_end = framed.index(b"\r\n", pos)
        positions += [pos, line_end, line_end + 1]
        data_end = line_end + 2 + len(c)
        positions += [data_end, data_end + 1]
        pos = data_end + 2
    positions += [pos, len(framed) - 2, len(framed) - 1]
    return positions


@pytest.mark.parametrize("n", [1, 10_000])
def test_many_tiny_chunks_decode_in_linear_time(n):
    """A body of many one-byte chunks: decoded exactly, without quadratic buffer work
    (100k pieces would time out under a quadratic parser; 10k keeps CI fast)."""
    body = b"1\r\nx\r\n" * n + b"0\r\n\r\n"
    messages, end = run([CHUNKED_HEAD + body])
    assert end == "eof" and b"".join(d.data for d in messages[0]["data"]) == b"x" * n


def test_the_hang_guard_fires():
    """The alarm the properties rely on really interrupts a feed that never returns."""
    import time

    from hardening_support import Hang

    with pytest.raises(Hang):
        with no_hang(0.2):
            end = time.monotonic() + 5
            while time.monotonic() < end:
                pass


# --- the fast path for common heads agrees with the full parser ---------------------------

class PythonHeadParser(RequestParser):
    _plain_head = staticmethod(plain_head_py)
    _request_head = None  # (the compiled shortcut too is left out)


class CompiledHeadParser(RequestParser):
    _plain_head = staticmethod(plain_head_c)


NOT_BUILT = "the compiled parser is not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)"
needs_compiled = pytest.mark.skipif(plain_head_c is None, reason=NOT_BUILT)
HEAD_PARSERS = [pytest.param(PythonHeadParser, id="py"),
                pytest.param(CompiledHeadParser, id="c", marks=needs_compiled)]


def _head_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data[:end] if end >= 0 else data


def _full_outcome(parser, block):
    try:
        return parser._parse_any_head(block)
    except HttpError as exc:
        return exc.status


# Pieces of heads, good and bad, and what the fast path must refuse between them.
SKELETON = [b"GET", b"POST", b"OPTIONS", b"CONNECT", b"get", b" ", b"  ", b"\t", b"/", b"/a?b", b"?", b"#",
            b"*", b"http://h/", b" HTTP/1.1", b" HTTP/1.0", b" HTTP/1.2", b" HTTP/2.0", b" http/1.1", b"HTTP/1.",
            b"\r\n", b"\r", b"\n", b"Host", b"hOST", b":", b": ", b"h", b"Content-Length", b"transfer-encoding",
            b"chunked", b"Connection", b"close", b"keep-alive", b"Upgrade", b"websocket", b"Expect",
            b"100-continue", b"CONTENT-TYPE", b"5", b"\x00", b"\x7f", b"\x80", b"\xff"]
REQUEST_LINES = [b"GET / HTTP/1.1", b"POST /a?b=c HTTP/1.0", b"OPTIONS * HTTP/1.1", b"CONNECT h:1 HTTP/1.1",
                 b"CONNECT / HTTP/1.1", b"connect / HTTP/1.1", b"GET http://h/x HTTP/1.1", b"PUT /x HTTP/1.2",
                 b"DELETE /%41?#x HTTP/1.1"]
FIELD_NAMES = [b"Host", b"host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"Upgrade",
               b"Content-Type", b"content-TYPE", b"X", b"User-Agent", b"Sec-Fetch-Mode", b""]
# The bytes at the edges of the character classes of the grammar.
EDGE_BYTES = [0x00, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x28, 0x2C, 0x2F, 0x3A,
              0x3F, 0x40, 0x5B, 0x7C, 0x7E, 0x7F, 0x80, 0xA0, 0xFF]
piece = st.sampled_from(SKELETON) | st.binary(min_size=1, max_size=4)
valid_value = st.lists(st.sampled_from([b"a", b"1", b",", b" ", b"\t", b":", b"\xe9"]), max_size=5).map(b"".join)


@st.composite
def skeleton_heads(draw):
    """Random bytes around and inside the skeleton of a head: its request line, field
    names, separators and values, each mostly a plausible piece, sometimes noise."""
    request_line = draw(st.sampled_from(REQUEST_LINES) | st.lists(piece, max_size=8).map(b"".join))
    head = request_line
    for _ in range(draw(st.integers(0, 6))):
        head += draw(st.sampled_from([b"\r\n"] * 20 + [b"\n", b"\r", b"\r\n ", b"\r\n\r\n", b""]))
        head += draw(st.sampled_from(FIELD_NAMES) | tokens.map(str.encode) | st.lists(piece, max_size=3).map(b"".join))
        head += draw(st.sampled_from([b":", b": ", b":\t "] * 4 + [b" :", b""]))
        head += draw(valid_value | valid_value | st.lists(piece, max_size=5).map(b"".join))
    return head


SPECIAL_NAMES = ["host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "content-type"]
field_names = st.sampled_from(SPECIAL_NAMES).flatmap(lambda n: st.sampled_from([n, n.upper(), n.title()])) | tokens


@st.composite
def plain_heads(draw):
    """Heads the fast path accepts, with any method (CONNECT too) and any fields, the
    framing ones in any case and repeated."""
    method = draw(st.sampled_from(["GET", "POST", "CONNECT", "connect", "OPTIONS"]) | tokens)
    target = "/" + draw(path_chars) + draw(st.sampled_from(["", "?", "?a=1", "?a?b"]))
    lines = [b"%s %s HTTP/1.%d" % (method.encode(), target.encode(), draw(st.integers(0, 1)))]
    for name, value, pre, post in draw(st.lists(st.tuples(field_names, value_chars, ows, ows), max_size=8)):
        lines.append(name.encode() + b":" + pre + value + post)
    return b"\r\n".join(lines)


SEPARATORS = b"\r\n\t :/?."


@st.composite
def one_byte_off(draw):
    """A plain head with one byte replaced or inserted, often next to a separator:
    the edges of the grammar."""
    head = bytearray(draw(plain_heads() | requests().map(lambda r: _head_block(serialise(r)))))
    near = [i for i in range(len(head) + 1)
            if (i < len(head) and head[i] in SEPARATORS) or (i > 0 and head[i - 1] in SEPARATORS)]
    pos = draw(st.sampled_from(near) | st.integers(0, len(head)))
    byte = draw(st.one_of([st.sampled_from(EDGE_BYTES)] * 3 + [st.integers(0, 255)]))
    if pos < len(head) and draw(st.booleans()):
        head[pos] = byte
    else:
        head.insert(pos, byte)
    return bytes(head)


def limit_cases(block: bytes, least: int = 0):
    """Strategy: (request_line, field_size, fields) limits, each at the bound this
    block meets, one either side of it (not below ``least``), or the default."""
    line_end = block.find(b"\r\n")
    line_end = len(block) if line_end < 0 else line_end
    default = Limits()

    def around(value, default_value):
        return st.sampled_from([max(least, value - 1), value, value + 1, default_value])

    return st.tuples(around(line_end, default.request_line), around(len(block) - line_end, default.field_size),
                     around(block.count(b"\r\n"), default.fields))


any_heads = st.one_of(requests().map(serialise), mutated(), skeleton_heads(), plain_heads(), one_byte_off(),
                      one_byte_off())


@SETTINGS
@pytest.mark.parametrize("parser_cls", HEAD_PARSERS)
@given(data=any_heads)
def test_fast_head_path_accepts_only_what_the_full_parser_accepts_identically(parser_cls, data):
    """``_parse_plain_head`` is a speed-up for common heads: for any head it either
    declines (None) or returns exactly the head the full checks build from it, with
    either implementation of ``plain_head``."""
    block = _head_block(data)
    parser = parser_cls()
    try:
        fast = parser._parse_plain_head(block)
    except HttpError as exc:
        fast = exc.status
    if fast is None:
        return
    full = _full_outcome(RequestParser(), block)
    assert _fields(fast) == _fields(full), (block, fast, full)


@needs_compiled
@settings(SETTINGS, max_examples=EXAMPLES * 4)  # a cheap test: more examples find more edges
@given(any_heads.flatmap(lambda data: st.tuples(st.just(_head_block(data)), limit_cases(_head_block(data), -1))))
def test_compiled_and_python_plain_heads_agree(case):
    block, limits = case
    compiled = plain_head_c(block, *limits)
    python = plain_head_py(block, *limits)
    assert compiled == python, (block, limits, compiled, python)
    if python is not None:
        assert [type(v) for v in compiled] == [type(v) for v in python]


@needs_compiled
@SETTINGS
@given(any_heads.flatmap(lambda data: st.tuples(st.just(data), limit_cases(_head_block(data)))))
def test_parsers_give_the_same_events_and_errors_with_either_head_path(case):
    data, (request_line, field_size, fields) = case
    limits = Limits(request_line=request_line, field_size=field_size, fields=fields)
    compiled = _events(CompiledHeadParser(limits), data)
    python = _events(PythonHeadParser(limits), data)
    assert compiled == python, data


def _events(parser, data: bytes) -> tuple:
    """Every event of ``data`` fed whole (pipelined requests in turn), then how it ended:
    with the error's class, status and message."""
    out = []
    try:
        with no_hang():
            events = parser.feed(data)
            while True:
                for ev in events:
                    if isinstance(ev, RequestHead):
                        out.append(_fields(ev))
                    elif isinstance(ev, Data):
                        out.append((ev.data, ev.end_of_chunk))
                    else:
                        out.append(None if ev.trailers is None else list(ev.trailers.items()))
                if not parser.done:
                    break
                events = parser.next_request()
            parser.feed_eof()
    except HttpError as exc:
        return tuple(out), (type(exc), exc.status, exc.message)
    return tuple(out), None


def _fields(outcome):
    if not isinstance(outcome, RequestHead):
        return outcome
    return {name: (list(value.items()) if name == "headers" else value)
            for name in RequestHead.__dataclass_fields__ for value in [getattr(outcome, name)]}
