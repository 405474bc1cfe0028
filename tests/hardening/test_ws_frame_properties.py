"""Property-based tests of the WebSocket frame parser (server/websocket/frames.py).

    generated messages ──fragment, mask (and deflate)──► client frames ──random split──► FrameParser

* valid client frames, fragmented anyhow with control frames in between and split at any
  point, give back exactly the messages that were sent (also compressed);
* any mutation of them gives well-formed messages or a ``WebSocketError`` carrying a close
  code the server may send (1002, 1007, 1009), never another exception, and the outcome
  does not depend on how the bytes are split.
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening_support import no_hang

frames = pytest.importorskip("server.websocket.frames")
deflate = pytest.importorskip("server.websocket.deflate")

LONG = os.environ.get("HARDENING_LONG") == "1"
SETTINGS = settings(max_examples=2000 if LONG else 150, deadline=2000,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ERROR_CODES = {1002, 1007, 1009}
MAX_MESSAGE = 4096

Opcode, MsgType = frames.Opcode, frames.MsgType


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(["text", "binary", "ping", "pong"]))
    if kind == "text":
        return kind, draw(st.text(max_size=300))
    if kind == "binary":
        return kind, draw(st.binary(max_size=300))
    return kind, draw(st.binary(max_size=125))


TYPES = {"text": MsgType.TEXT, "binary": MsgType.BINARY, "ping": MsgType.PING, "pong": MsgType.PONG}


@st.composite
def conversations(draw):
    """(messages the parser must return as (type, data, extra), client bytes, compressed?)."""
    compressed = draw(st.booleans())
    deflater = deflate.Deflater(deflate.DeflateParams()) if compressed else None
    want, out = [], []
    for kind, payload in draw(st.lists(messages(), max_size=6)):
        mask = draw(st.binary(min_size=4, max_size=4))
        if kind in ("ping", "pong"):
            out.append(frames.build_frame(Opcode.PING if kind == "ping" else Opcode.PONG, payload, mask=mask))
            want.append((TYPES[kind], payload, None))
            continue
        data = payload.encode("utf-8") if kind == "text" else payload
        rsv1 = compressed and draw(st.booleans())
        if rsv1:
            data = deflater.compress(data)
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        for i, piece in enumerate(pieces):
            op = (Opcode.TEXT if kind == "text" else Opcode.BINARY) if i == 0 else Opcode.CONTINUATION
            out.append(frames.build_frame(op, piece, fin=i == len(pieces) - 1, rsv1=rsv1 and i == 0,
                                          mask=draw(st.binary(min_size=4, max_size=4))))
            if i < len(pieces) - 1 and draw(st.booleans()):  # a control frame between fragments
                ping = draw(st.binary(max_size=10))
                out.append(frames.build_frame(Opcode.PING, ping, mask=b"abcd"))
                want.append((MsgType.PING, ping, None))
        want.append((TYPES[kind], payload, None))
    if draw(st.booleans()):
        out.append(frames.build_frame(Opcode.CLOSE, frames.close_payload(1000, "bye"), mask=b"wxyz"))
        want.append((MsgType.CLOSE, 1000, "bye"))
    return want, b"".join(out), compressed


def splits(data: bytes):
    return st.lists(st.integers(0, len(data)), max_size=10).map(
        lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])])


def run(pieces, compressed: bool):
    """(messages as (type, data, extra), error close code or None)."""
    inflater = deflate.Inflater(deflate.DeflateParams()) if compressed else None
    parser = frames.FrameParser(max_message_size=MAX_MESSAGE, deflate=inflater)
    got = []
    try:
        with no_hang():
            for piece in pieces:
                got += [(m.type, m.data, m.extra) for m in parser.feed(piece)]
    except frames.WebSocketError as exc:
        assert exc.code in ERROR_CODES and frames.sendable_close_code(exc.code), exc.code
        assert parser.closed and parser.feed(b"\x81\x80abcd") == []
        return got, exc.code
    return got, None


@SETTINGS
@given(conversations().flatmap(lambda c: st.tuples(st.just(c), splits(c[1]))))
def test_valid_frames_give_the_messages_sent_however_split(case):
    (want, data, compressed), pieces = case
    assert run(pieces, compressed) == (want, None)
    assert run([data], compressed) == (want, None)


@st.composite
def mutated(draw):
    _, data, compressed = draw(conversations())
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut", "byte"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 4))]
        elif kind == "cut":
            del data[pos:]
        elif kind == "byte" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x7E, 0x7F, 0x80, 0xFF, 0x88, 0x89, 0x0F, 0xC1]))
    return bytes(data), compressed


@SETTINGS
@given(mutated().flatmap(lambda m: st.tuples(st.just(m), splits(m[0]))))
def test_mutated_frames_give_messages_or_a_close_code(case):
    (data, compressed), pieces = case
    got, error = run(pieces, compressed)
    for mtype, value, _ in got:
        assert mtype in (MsgType.TEXT, MsgType.BINARY, MsgType.PING, MsgType.PONG, MsgType.CLOSE)
        if mtype == MsgType.TEXT:
            assert isinstance(value, str) and len(value.encode("utf-8")) <= MAX_MESSAGE
        elif mtype == MsgType.CLOSE:
            assert frames.sendable_close_code(value) or value == frames.CloseCode.NO_STATUS
        else:
            assert isinstance(value, bytes) and len(value) <= MAX_MESSAGE
    whole = run([data], compressed)
    # Messages a split feed returned before an error may be fewer than the whole feed's
    # (they are lost with the exception), never different.
    if error is None and whole[1] is None:
        assert got == whole[0]
    else:
        assert error is not None and whole[1] is not None, (error, whole[1], data)
        assert got == whole[0][:len(got)] or whole[0] == got[:len(whole[0])]
