"""HPACK blocks reused (server/http2/blocks.py). The encoder of responses gives a block
again while encoding it would change nothing: its output is byte for byte hpack's own
encoder's, in lockstep over sequences of heads with repeats, new values and table resizes,
and a decoder reads every block back. The decoder of requests gives a short block's fields
again while the table does not change: its fields are hpack's own decoder's, in lockstep,
errors included."""

import pytest

hpack = pytest.importorskip("hpack", reason="HTTP/2 needs the h2 package (the http2 extra)")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from server.http2.blocks import MAX_BLOCKS, MAX_DECODED, MAX_DECODED_BLOCK, ReusingDecoder, ReusingEncoder  # noqa: E402


def head(date: bytes, length: bytes = b"14", kind: bytes = b"text/plain") -> list:
    return [(b":status", b"200"), (b"content-type", kind), (b"content-length", length),
            (b"server", b"asyncworker"), (b"date", date)]


def lockstep(steps) -> tuple[list, list]:
    """Each step a head to encode, or an int: a new table size (the client's SETTINGS)."""
    ours, theirs = ReusingEncoder(), hpack.Encoder()
    decoder = hpack.Decoder()
    got, expected = [], []
    for step in steps:
        if isinstance(step, int):
            if step != theirs.header_table_size:  # (hpack forgets an update followed by the same size)
                ours.header_table_size = theirs.header_table_size = step
            continue
        block = ours.encode(step)
        got.append(block)
        expected.append(theirs.encode(step))
        assert decoder.decode(block, raw=True) == step
    return got, expected


def test_the_same_head_again_is_the_same_block_without_encoding_it():
    encoder = ReusingEncoder()
    first = encoder.encode(head(b"a"))  # (inserts its fields)
    second = encoder.encode(head(b"a"))  # (inserts nothing: kept)
    assert encoder.encode(head(b"a")) is second and second != first


def test_an_insertion_drops_what_was_kept():
    got, expected = lockstep([head(b"a"), head(b"a"), head(b"b"), head(b"a"), head(b"a"), head(b"b")])
    assert got == expected


def test_a_resize_drops_what_was_kept_and_the_block_carries_the_update():
    got, expected = lockstep([head(b"a"), head(b"a"), 256, head(b"a"), head(b"a"), 0, head(b"a"), 4096,
                              head(b"a"), head(b"a")])
    assert got == expected


def test_a_never_indexed_field_is_not_answered_from_a_block_of_the_plain_one():
    """hpack's NeverIndexedHeaderTuple equals the plain tuple of the same name and value, but
    is encoded otherwise: neither may stand for the other in what is kept."""
    plain = [(b":status", b"200"), (b"set-cookie", b"a=1")]
    secret = [(b":status", b"200"), hpack.NeverIndexedHeaderTuple(b"set-cookie", b"a=1")]
    got, expected = lockstep([secret, secret, plain, plain, secret])
    assert got == expected


def test_the_kept_blocks_are_bounded():
    """Heads made of fields already in the table insert nothing, so each is kept: 56 of
    them fill what is kept to the bound, never past it."""
    encoder = ReusingEncoder()
    lengths = [(b"content-length", b"%d" % i) for i in range(8)]
    encoder.encode(lengths)  # (inserts them all)
    insertions, kept = encoder.header_table.insertions, 0
    for first in lengths:
        for second in lengths:
            if first != second:
                encoder.encode([(b":status", b"200"), first, second])
                kept = max(kept, len(encoder._blocks))
    assert encoder.header_table.insertions == insertions
    assert kept == MAX_BLOCKS


values = st.sampled_from([b"a", b"b", b"Thu, 03 Dec 2026 10:00:00 GMT", b"x" * 300])
heads = st.builds(head, values, st.sampled_from([b"14", b"0", b"123456"]), st.sampled_from([b"text/plain", b"x/y"]))
steps = st.lists(st.one_of(heads, heads, heads, st.sampled_from([0, 64, 256, 4096])), max_size=40)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_every_block_is_hpacks_own(sequence):
    got, expected = lockstep(sequence)
    assert got == expected


# -- decoding -------------------------------------------------------------------------------------

def request(path: bytes = b"/", agent: bytes = b"h2load") -> list:
    return [(b":method", b"GET"), (b":path", path), (b":scheme", b"http"), (b":authority", b"127.0.0.1"),
            (b"user-agent", agent)]


def decoded_in_lockstep(blocks, limit: int = 65536) -> list:
    """Each block decoded by ours and by hpack's decoder (with the same bound): the same fields,
    or the same error."""
    ours, theirs = ReusingDecoder(limit), hpack.Decoder(limit)
    results = []
    for block in blocks:
        if isinstance(block, int):  # a new bound on the list's size (our SETTINGS acknowledged)
            ours.max_header_list_size = theirs.max_header_list_size = block
            continue
        try:
            expected = theirs.decode(block, raw=True)
        except hpack.HPACKError as exc:
            with pytest.raises(type(exc)):
                ours.decode(block, raw=True)
            results.append(type(exc))
            continue
        got = ours.decode(block, raw=True)
        assert got == expected
        results.append(got)
    return results


def test_a_block_again_is_answered_without_decoding_it():
    encoder = hpack.Encoder()
    first, again = encoder.encode(request()), encoder.encode(request())  # (the second: all indexed)
    decoder = ReusingDecoder(65536)
    decoder.decode(first, raw=True)
    assert decoder.decode(again, raw=True) == request()

    def decoding(*args):
        raise AssertionError("decoded again")

    decoder._decode_indexed = decoding
    assert decoder.decode(again, raw=True) == request()
    fields = decoder.decode(again, raw=True)
    fields.append((b"x", b"y"))  # (a list of its own: the kept fields are not changed)
    assert decoder.decode(again, raw=True) == request()


def test_an_insertion_or_resize_drops_what_was_kept():
    """The same bytes name other fields once the table changed: index 62 is the newest entry."""
    encoder = hpack.Encoder()
    a, b = [(b"user-agent", b"a")], [(b"user-agent", b"b")]
    blocks = [encoder.encode(a), encoder.encode(a), encoder.encode(b), encoder.encode(b)]
    assert blocks[1] == blocks[3] == b"\xbe"  # (the same bytes, other fields)
    assert decoded_in_lockstep(blocks)[3] == b
    resize = b"\x20"  # a table size update to 0: every entry goes, index 62 no longer exists
    results = decoded_in_lockstep([blocks[0], blocks[1], resize + b"\x82", blocks[1]])
    assert results[-1] is hpack.InvalidTableIndex


def test_a_lower_bound_on_the_list_applies_to_a_kept_block():
    encoder = hpack.Encoder()
    blocks = [encoder.encode(request()), encoder.encode(request())]
    results = decoded_in_lockstep([blocks[0], blocks[1], blocks[1], 100, blocks[1]])
    assert results[-1] is hpack.OversizedHeaderListError


def test_what_is_kept_is_bounded():
    decoder = ReusingDecoder(65536)
    static = [bytes([0x80 | index]) for index in range(1, 62)]  # each a field of the static table
    kept = 0
    for first in static:
        for second in static[:4]:
            decoder.decode(first + second, raw=True)
            kept = max(kept, len(decoder._lists))
    assert kept == MAX_DECODED
    long_block = static[1] * (MAX_DECODED_BLOCK + 1)
    decoder.decode(long_block, raw=True)
    assert long_block not in decoder._lists


fields = st.sampled_from([request(), request(b"/a"), request(agent=b"x" * 100), request(b"/b", b"y"),
                          [(b":method", b"GET"), (b"cookie", b"c=1")]])
encoded = st.lists(st.one_of(fields, fields, st.sampled_from([0, 64, 4096])), max_size=30)


@settings(max_examples=200, deadline=None)
@given(encoded, st.sampled_from([65536, 200]))
def test_every_decoded_block_is_hpacks_own(sequence, limit):
    encoder = hpack.Encoder()
    blocks = []
    for step in sequence:
        if isinstance(step, int):
            encoder.header_table_size = step  # (the next block starts with the size update)
        else:
            blocks.append(encoder.encode(step))
    decoded_in_lockstep(blocks, limit)
