"""The parser looks at each byte of an unfinished head, chunk-size line or trailer line
once: it keeps how far it has looked (``_scan_from``), the CRLFs before that point and
where the current line starts. Whatever the pieces, it must decide exactly as a parser
that looks at the whole buffer again at each piece (``_scan_from`` set back to 0, as
before the parser kept it): the same events, the same error with the same message, at
every point of the input. (Pieces may be refused earlier than one piece: an unfinished
line too long for the limits is refused before its end arrives.)"""

import pytest

from server.protocol.errors import HttpError
from server.protocol.events import Data, EndOfMessage, RequestHead
from server.protocol.limits import Limits
from server.protocol.parser import RequestParser

SMALL = Limits(request_line=24, fields=3, field_size=30, chunk_line=12)
GET = b"GET / HTTP/1.1\r\nHost: x\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

CASES = [
    # valid: leading empty lines, pipelined requests, a body in chunks, trailers
    b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n",
    CHUNKED + b"3;a=b\r\nabc\r\n0\r\nX: y\r\nZ: w\r\n\r\n" + GET + b"\r\n",
    GET + b"X: \r\r\n\r\n",  # a CR before the CRLF: refused by the full checks, not early
    # refused while unfinished or when complete
    GET + b"X: y\nZ: w\r\n\r\n",  # bare LF
    b"GET / HTTP/1.1\n\r\n",
    b"\nGET / HTTP/1.1\r\n\r\n",
    GET + b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n",  # one field too many
    GET + b"X: " + b"a" * 26 + b"\r\n\r\n",  # a field line one byte too long
    GET + b"X: " + b"a" * 25 + b"\r\n\r\n",  # and at the bound
    b"GET /" + b"a" * 20 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # the request line too long
    CHUNKED + b"1;a=bcdefghijk\r\nx\r\n0\r\n\r\n",  # the chunk-size line too long
    CHUNKED + b"1;a=bcdefgh\r\nx\r\n0\r\n\r\n",  # and at the bound
    CHUNKED + b"1;a\nb\r\nx\r\n0\r\n\r\n",  # bare LF in a chunk-size line
    CHUNKED + b"0\r\nX: y\nZ\r\n\r\n",  # bare LF in a trailer
    CHUNKED + b"0\r\nX: " + b"a" * 30 + b"\r\n\r\n",  # a trailer line too long
]


def summary(event):
    if isinstance(event, RequestHead):
        return "head", event.method, event.target, tuple(event.raw_headers)
    if isinstance(event, Data):
        return "data", event.data
    assert isinstance(event, EndOfMessage)
    return "end", tuple((event.trailers or {}).items())


def outcome(pieces, rescan: bool = False) -> tuple:
    """The events of ``pieces``, going on to each pipelined request, and the error, if any;
    ``rescan``: the whole buffer is looked at again at each piece."""
    parser = RequestParser(SMALL)
    events = []
    try:
        for piece in pieces:
            if rescan:
                parser._scan_from = 0
            events += parser.feed(piece)
            while parser.done:
                events += parser.next_request()
    except HttpError as exc:
        return [summary(e) for e in events], (exc.status, str(exc))
    return [summary(e) for e in events], parser.in_message


def splits(raw: bytes):
    yield [raw[i:i + 1] for i in range(len(raw))]
    yield [raw[i:i + 3] for i in range(0, len(raw), 3)]
    # each CR alone at the end of a piece, its LF at the start of the next
    cuts = [0, *(i + 1 for i in range(len(raw)) if raw.startswith(b"\r\n", i)), len(raw)]
    yield [raw[a:b] for a, b in zip(cuts, cuts[1:])]


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
def test_pieces_decide_as_a_rescan_at_every_point(raw):
    for end in range(len(raw) + 1):
        for pieces in splits(raw[:end]):
            assert outcome(pieces) == outcome(pieces, rescan=True), (raw[:end], pieces)


def test_the_cases_cross_each_check():
    """Each check of an unfinished or finished head is met by some case above."""
    errors = {outcome([raw[i:i + 1] for i in range(len(raw))])[1] for raw in CASES} | \
        {outcome([raw])[1] for raw in CASES}
    for message in ("Bare LF in request head", "Too many header fields", "Header field too large",
                    "Request line too long", "Chunk size line too long", "Bare LF in chunk size line",
                    "Bare LF in trailer section", "Trailer field too large"):
        assert any(isinstance(e, tuple) and e[1] == message for e in errors), message
    assert outcome([CASES[0]])[1] is False and len(outcome([CASES[0]])[0]) == 4
