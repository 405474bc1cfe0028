"""The sans-IO WebSocket frame parser and writer, and permessage-deflate, without sockets."""

import os
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from server.websocket.deflate import (
    DeflateParams,
    Deflater,
    ExtensionsSyntaxError,
    Inflater,
    negotiate,
    parse_extensions,
)
from server.websocket.frames import (
    FrameParser,
    Message,
    MsgType,
    Opcode,
    WebSocketError,
    apply_mask,
    build_frame,
    close_payload,
    parse_close,
)

MASK = b"\x37\xfa\x21\x3d"


def client(opcode, payload=b"", fin=True, rsv1=False):
    return build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=MASK)


def feed_bytewise(parser, data):
    out = []
    for i in range(len(data)):
        out += parser.feed(data[i:i + 1])
    return out


def feed_both_ways(data, **kwargs):
    """The messages from ``data`` fed at once and one byte at a time; they must agree."""
    whole = FrameParser(**kwargs).feed(data)
    bytewise = feed_bytewise(FrameParser(**kwargs), data)
    assert whole == bytewise
    return whole


def error_code(data, bytewise=False, **kwargs):
    parser = FrameParser(**kwargs)
    with pytest.raises(WebSocketError) as info:
        feed_bytewise(parser, data) if bytewise else parser.feed(data)
    assert parser.closed
    assert parser.feed(client(Opcode.TEXT, b"after")) == []
    return info.value.code


# -- messages -------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_and_binary_of_every_length_encoding(size):
    text = ("é" * size)[:size] if size else ""
    data = os.urandom(size)
    frames = client(Opcode.TEXT, text.encode()) + client(Opcode.BINARY, data)
    assert feed_both_ways(frames) == [Message(MsgType.TEXT, text), Message(MsgType.BINARY, data)]


def test_length_encodings_on_the_wire():
    assert build_frame(Opcode.BINARY, b"x" * 125)[:2] == b"\x82\x7d"
    assert build_frame(Opcode.BINARY, b"x" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert build_frame(Opcode.BINARY, b"x" * 65536)[:10] == b"\x82\x7f" + struct.pack("!Q", 65536)
    masked = build_frame(Opcode.TEXT, b"Hello", mask=b"\x37\xfa\x21\x3d")
    assert masked == bytes.fromhex("818537fa213d7f9f4d5158")  # RFC 6455 s5.7


def test_fragments_are_reassembled_with_control_frames_between_them():
    text = "Grüße, κόσμε"
    raw = text.encode()
    # Split inside a multi-byte character: the incremental decoder must carry it over.
    cut = raw.index("ü".encode()) + 1
    data = (client(Opcode.TEXT, raw[:cut], fin=False)
            + client(Opcode.PING, b"p1")
            + client(Opcode.CONTINUATION, raw[cut:-3], fin=False)
            + client(Opcode.PONG, b"")
            + client(Opcode.CONTINUATION, raw[-3:])
            + client(Opcode.BINARY, b"a", fin=False) + client(Opcode.CONTINUATION, b"", fin=False)
            + client(Opcode.CONTINUATION, b"bc"))
    assert feed_both_ways(data) == [
        Message(MsgType.PING, b"p1"),
        Message(MsgType.PONG, b""),
        Message(MsgType.TEXT, text),
        Message(MsgType.BINARY, b"abc"),
    ]


def test_close_frames_and_nothing_after_them():
    data = client(Opcode.CLOSE, close_payload(1000, "bye")) + client(Opcode.TEXT, b"late")
    assert feed_both_ways(data) == [Message(MsgType.CLOSE, 1000, "bye")]
    assert FrameParser().feed(client(Opcode.CLOSE)) == [Message(MsgType.CLOSE, 1005, "")]
    assert parse_close(close_payload(4999, "é")) == (4999, "é")


def test_unmasked_frames_are_fine_for_a_client_side_parser():
    parser = FrameParser(require_mask=False)
    assert parser.feed(build_frame(Opcode.TEXT, b"hi")) == [Message(MsgType.TEXT, "hi")]


def test_message_json():
    assert FrameParser().feed(client(Opcode.TEXT, b'{"a": [1]}'))[0].json() == {"a": [1]}


# -- failures and their close codes ------------------------------------------------

def raw_frame(first, second, rest=b""):
    return bytes([first, second]) + rest


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize("data, code", [
    pytest.param(build_frame(Opcode.TEXT, b"hi"), 1002, id="unmasked"),
    pytest.param(client(3, b""), 1002, id="reserved-opcode-3"),
    pytest.param(client(0xB, b""), 1002, id="reserved-control-opcode"),
    pytest.param(raw_frame(0x80 | 0x20 | 1, 0x80, MASK), 1002, id="rsv2"),
    pytest.param(raw_frame(0x80 | 0x10 | 1, 0x80, MASK), 1002, id="rsv3"),
    pytest.param(client(Opcode.TEXT, b"x", rsv1=True), 1002, id="rsv1-without-deflate"),
    pytest.param(raw_frame(Opcode.PING, 0x80, MASK), 1002, id="fragmented-ping"),
    pytest.param(raw_frame(0x80 | Opcode.PING, 0x80 | 126, b"\x00\x7e" + MASK + b"x" * 126), 1002,
                 id="control-126-bytes"),
    pytest.param(client(Opcode.CONTINUATION, b"x"), 1002, id="continuation-without-message"),
    pytest.param(client(Opcode.TEXT, b"a", fin=False) + client(Opcode.TEXT, b"b"), 1002,
                 id="new-message-inside-fragmented"),
    pytest.param(raw_frame(0x82, 0x80 | 127, b"\x80" + b"\x00" * 7 + MASK), 1002, id="64-bit-msb"),
    pytest.param(raw_frame(0x82, 0x80 | 126, b"\x00\x7d" + MASK + b"x" * 125), 1002, id="16-bit-length-125"),
    pytest.param(raw_frame(0x82, 0x80 | 127, struct.pack("!Q", 65535) + MASK + b"x" * 65535), 1002,
                 id="64-bit-length-65535"),
    pytest.param(client(Opcode.CLOSE, b"\x03"), 1002, id="close-1-byte"),
    pytest.param(client(Opcode.CLOSE, struct.pack("!H", 1005)), 1002, id="close-code-1005"),
    pytest.param(client(Opcode.CLOSE, struct.pack("!H", 999)), 1002, id="close-code-999"),
    pytest.param(client(Opcode.CLOSE, struct.pack("!H", 2000)), 1002, id="close-code-2000"),
    pytest.param(client(Opcode.CLOSE, struct.pack("!H", 5000)), 1002, id="close-code-5000"),
    pytest.param(client(Opcode.CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007, id="close-reason-not-utf8"),
    pytest.param(client(Opcode.TEXT, b"ok \xed\xa0\x80"), 1007, id="text-surrogate"),
    pytest.param(client(Opcode.TEXT, b"\xce", fin=True), 1007, id="text-truncated-sequence"),
])
def test_protocol_violations_get_their_close_code(data, code, bytewise):
    assert error_code(data, bytewise=bytewise) == code


def test_invalid_utf8_fails_fast_in_a_fragmented_message():
    parser = FrameParser()
    parser.feed(client(Opcode.TEXT, b"fine", fin=False))
    with pytest.raises(WebSocketError) as info:
        parser.feed(client(Opcode.CONTINUATION, b"\xc0\xaf", fin=False))  # overlong: never valid
    assert info.value.code == 1007


def test_max_message_size_bound_is_crossed_only_past_the_limit():
    assert FrameParser(max_message_size=10).feed(client(Opcode.BINARY, b"x" * 10))[0].data == b"x" * 10
    assert error_code(client(Opcode.BINARY, b"x" * 11), max_message_size=10) == 1009
    fragments = client(Opcode.TEXT, b"x" * 6, fin=False) + client(Opcode.CONTINUATION, b"x" * 5)
    assert error_code(fragments, max_message_size=10) == 1009


def test_oversize_frame_is_refused_from_its_header_alone():
    header = raw_frame(0x82, 0x80 | 127, struct.pack("!Q", 1 << 40) + MASK)
    parser = FrameParser(max_message_size=1 << 20)
    with pytest.raises(WebSocketError) as info:
        parser.feed(header)  # no payload byte sent: nothing buffered
    assert info.value.code == 1009


def test_writer_refuses_bad_control_frames_and_close_codes():
    with pytest.raises(ValueError):
        build_frame(Opcode.PING, b"x" * 126)
    with pytest.raises(ValueError):
        build_frame(Opcode.CLOSE, b"", fin=False)
    with pytest.raises(ValueError):
        close_payload(1006)
    with pytest.raises(ValueError):
        close_payload(1000, "x" * 124)
    assert len(close_payload(1000, "x" * 123)) == 125


def test_apply_mask_is_its_own_inverse():
    data = os.urandom(1001)
    assert apply_mask(apply_mask(data, MASK), MASK) == data
    assert apply_mask(b"", MASK) == b""


# -- permessage-deflate --------------------------------------------------------------

def client_deflater(no_context_takeover=False):
    return Deflater(DeflateParams(server_no_context_takeover=no_context_takeover))


def compressed_frames(deflater, text, pieces=1):
    payload = deflater.compress(text.encode())
    step = max(1, len(payload) // pieces)
    chunks = [payload[i:i + step] for i in range(0, len(payload), step)] or [b""]
    frames = [client(Opcode.TEXT if i == 0 else Opcode.CONTINUATION, chunk,
                     fin=i == len(chunks) - 1, rsv1=i == 0) for i, chunk in enumerate(chunks)]
    return b"".join(frames)


def test_compressed_messages_with_context_takeover_fragmented_and_bytewise():
    params = DeflateParams()
    sender = client_deflater()
    texts = ["hello " * 100, "hello " * 100, "", "ünïcode " * 30]
    data = b"".join(compressed_frames(sender, t, pieces=3) for t in texts)
    assert feed_both_ways(data, deflate=Inflater(params)) == [
        Message(MsgType.TEXT, t) for t in texts]
    # with deflate negotiated, an uncompressed message is still fine
    uncompressed = client(Opcode.BINARY, b"plain")
    assert FrameParser(deflate=Inflater(params)).feed(uncompressed) == [Message(MsgType.BINARY, b"plain")]


def test_client_no_context_takeover_resets_the_inflater_each_message():
    params = DeflateParams(client_no_context_takeover=True)
    sender = client_deflater(no_context_takeover=True)
    data = compressed_frames(sender, "abc" * 50) + compressed_frames(sender, "abc" * 50)
    assert [m.data for m in FrameParser(deflate=Inflater(params)).feed(data)] == ["abc" * 50] * 2


def test_decompression_bomb_is_stopped_at_the_limit():
    bomb = compressed_frames(client_deflater(), "\x00" * (8 << 20))  # 8 MiB of zeros, ~8 KiB on the wire
    assert len(bomb) < 20000
    parser = FrameParser(max_message_size=1 << 20, deflate=Inflater(DeflateParams()))
    with pytest.raises(WebSocketError) as info:
        parser.feed(bomb)
    assert info.value.code == 1009
    exact = compressed_frames(client_deflater(), "a" * 1000)
    assert FrameParser(max_message_size=1000, deflate=Inflater(DeflateParams())).feed(exact)[0].data == "a" * 1000
    assert error_code(compressed_frames(client_deflater(), "a" * 1001), max_message_size=1000,
                      deflate=Inflater(DeflateParams())) == 1009


def test_corrupt_compressed_data_is_a_protocol_error():
    assert error_code(client(Opcode.BINARY, b"\xff\xff\xff\xff", rsv1=True),
                      deflate=Inflater(DeflateParams())) == 1002


def test_rsv1_on_a_continuation_or_control_frame_is_refused_even_with_deflate():
    inflater = Inflater(DeflateParams())
    data = client(Opcode.TEXT, b"a", fin=False) + client(Opcode.CONTINUATION, b"b", rsv1=True)
    assert error_code(data, deflate=inflater) == 1002
    assert error_code(client(Opcode.PING, b"", rsv1=True), deflate=Inflater(DeflateParams())) == 1002


def test_server_deflater_output_inflates_with_raw_zlib():
    for params in (DeflateParams(), DeflateParams(server_no_context_takeover=True, server_max_window_bits=9)):
        deflater = Deflater(params)
        inflater = zlib.decompressobj(wbits=-15)
        for text in (b"x" * 5000, b"", b"y" * 300):
            out = deflater.compress(text)
            assert not out.endswith(b"\x00\x00\xff\xff")
            assert inflater.decompress(out + b"\x00\x00\xff\xff") == text


def test_parse_extensions():
    offers = parse_extensions([
        'permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits="10"',
        " , x-webkit-deflate-frame",
    ])
    assert offers == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", [("server_max_window_bits", "10")]),
        ("x-webkit-deflate-frame", []),
    ]
    for bad in ("permessage-deflate;", "a b", 'p; x="unterminated', "p; =1"):
        with pytest.raises(ExtensionsSyntaxError):
            parse_extensions([bad])


@pytest.mark.parametrize("offer, expected", [
    ("permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=15"),
    ("permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=10"),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=12"),
    # declined offers fall through to the next one
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; unknown=1, permessage-deflate; client_no_context_takeover",
     "permessage-deflate; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=16", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; client_max_window_bits=7", None),
    ("permessage-deflate; server_no_context_takeover=1", None),
    ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
    ("x-other", None),
])
def test_negotiation(offer, expected):
    params = negotiate(parse_extensions([offer]))
    assert (params.response_header() if params else None) == expected


# -- any split of the stream gives the same messages ----------------------------------------

_messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), min_size=1, max_size=6)


@settings(max_examples=100, deadline=None)
@given(messages=_messages, pieces=st.integers(1, 4), cuts=st.lists(st.integers(0, 4000), max_size=12),
       compress=st.booleans())
def test_any_split_of_the_stream_gives_the_same_messages(messages, pieces, cuts, compress):
    sender = client_deflater() if compress else None
    stream = b""
    for message in messages:
        opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
        payload = message.encode() if opcode == Opcode.TEXT else message
        if sender is not None:
            payload = sender.compress(payload)
        step = max(1, -(-len(payload) // pieces))
        chunks = [payload[i:i + step] for i in range(0, len(payload), step)] or [b""]
        for i, chunk in enumerate(chunks):
            stream += client(opcode if i == 0 else Opcode.CONTINUATION, chunk,
                             fin=i == len(chunks) - 1, rsv1=sender is not None and i == 0)
            stream += client(Opcode.PING, b"%d" % i)  # control frames between fragments
    parser = FrameParser(deflate=Inflater(DeflateParams()) if compress else None)
    got = []
    previous = 0
    for cut in sorted(c for c in cuts if c < len(stream)) + [len(stream)]:
        got += parser.feed(stream[previous:cut])
        previous = cut
    assert [m.data for m in got if m.type != MsgType.PING] == messages
