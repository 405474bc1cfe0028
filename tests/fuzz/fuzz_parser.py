"""Coverage-guided fuzzing of the HTTP/1.1 request parser (atheris / libFuzzer).

    fuzzer bytes ──► [split seed, request bytes] ──► RequestParser (whole, and in pieces)

One input is a connection's bytes. The first byte chooses how the rest is cut
into pieces; the bytes are parsed the way the server does (the next pipelined
request only after a complete keep-alive one, then the end of input). A crash is
any exception other than an ``HttpError`` with a documented status, an event
sequence that is out of order, or a different outcome for the whole input and the
same bytes in pieces. When the compiled head parser is built, a crash is also any
difference between it and the Python one: on the input's head, or in the events and
errors of the whole input. Run it as a script (see tests/fuzz/README.md); the test
module next to it replays corpus/ through ``check`` and runs a short bounded session.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["server"]):
    from server.protocol.errors import HttpError
    from server.protocol.events import Data, EndOfMessage, RequestHead
    from server.protocol.limits import Limits
    from server.protocol.parser import RequestParser, plain_head_c, plain_head_py

PARSER_STATUSES = {400, 413, 414, 417, 431, 501, 505}
# Small limits, so the fuzzer reaches the limit checks with short inputs.
LIMITS = Limits(request_line=200, fields=8, field_size=120, body=4096, chunk_line=40)


class FuzzFinding(AssertionError):
    """The parser broke one of its promises on this input."""


class PythonHeadParser(RequestParser):
    _plain_head = staticmethod(plain_head_py)
    _request_head = None  # (the compiled shortcut too is left out)


def parse(pieces, parser_cls=RequestParser) -> tuple:
    """(complete messages as comparable tuples, end) for bytes fed in ``pieces``; an
    error ends as ("error", class name, status, message)."""
    parser = parser_cls(LIMITS)
    done, current = [], None

    def take(events):
        nonlocal current
        for i, ev in enumerate(events):
            if type(ev) is RequestHead:
                if current is not None:
                    raise FuzzFinding("a head inside a message")
                current = [ev, bytearray(), []]
            elif type(ev) is Data:
                if current is None or not ev.data:
                    raise FuzzFinding("empty or stray Data")
                current[1] += ev.data
                if ev.end_of_chunk:
                    current[2].append(len(current[1]))
            elif type(ev) is EndOfMessage:
                if current is None or i != len(events) - 1:
                    raise FuzzFinding("stray EndOfMessage")
                head, body, ends = current
                if not head.chunked and len(body) != head.content_length:
                    raise FuzzFinding("body length differs from Content-Length")
                trailers = None if ev.trailers is None else tuple(ev.trailers.items())
                done.append((head.method, head.target, head.version, tuple(head.raw_headers), head.keep_alive,
                             bytes(body), tuple(ends), trailers, head.path, head.query,
                             tuple(head.headers.items()), head.content_length, head.chunked,
                             head.expect_continue, head.upgrade))
                current = None
            else:
                raise FuzzFinding(f"unknown event {ev!r}")

    try:
        for piece in pieces:
            take(parser.feed(piece))
            while parser.done:
                if not done[-1][4]:
                    return tuple(done), "close"
                take(parser.next_request())
        parser.feed_eof()
    except HttpError as exc:
        if exc.status not in PARSER_STATUSES:
            raise FuzzFinding(f"undocumented status {exc.status}") from exc
        return tuple(done), ("error", type(exc).__name__, exc.status, exc.message)
    return tuple(done), "eof"


def coarse(outcome: tuple) -> tuple:
    """The outcome without which error it was: bytes in pieces may meet an error sooner."""
    done, end = outcome
    return done, end if isinstance(end, str) else "error"


def pieces_of(data: bytes, seed: int) -> list[bytes]:
    """Cut ``data`` into pieces of 1..(seed % 17 + 1) bytes, varying with the seed."""
    step, out, pos, n = seed % 17 + 1, [], 0, seed
    while pos < len(data):
        size = 1 + n % step
        out.append(data[pos:pos + size])
        pos += size
        n = (n * 31 + 7) & 0xFFFF
    return out


def check(data: bytes) -> None:
    if not data:
        return
    seed, raw = data[0], data[1:]
    whole = parse([raw])
    split = parse(pieces_of(raw, seed))
    if coarse(whole) != coarse(split):
        raise FuzzFinding(f"split-dependent outcome: {whole[1]} whole, {split[1]} in pieces")
    if plain_head_c is not None:
        compare_head_parsers(raw, whole)


def compare_head_parsers(raw: bytes, whole: tuple) -> None:
    """The compiled and Python plain-head parsers agree on the head of ``raw`` (with the
    harness's limits and the defaults), and a parser using either gives ``whole``."""
    end = raw.find(b"\r\n\r\n")
    head = raw[:end] if end >= 0 else raw
    for limits in ((LIMITS.request_line, LIMITS.field_size, LIMITS.fields), (4094, 8190, 100)):
        compiled, python = plain_head_c(head, *limits), plain_head_py(head, *limits)
        if compiled != python:
            raise FuzzFinding(f"compiled and Python head parsers differ: {compiled!r} != {python!r}")
    # RequestParser uses the compiled parser when it is built.
    if parse([raw], PythonHeadParser) != whole:
        raise FuzzFinding("the parser's outcome depends on the head parser it uses")


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
