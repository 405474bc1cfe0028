"""The HPACK encoder of responses (server/http2/encoder.py) gives a block again while
encoding it would change nothing: its output is byte for byte hpack's own encoder's, in
lockstep over sequences of heads with repeats, new values and table resizes, and a
decoder reads every block back."""

import pytest

hpack = pytest.importorskip("hpack", reason="HTTP/2 needs the h2 package (the http2 extra)")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from server.http2.encoder import MAX_BLOCKS, ReusingEncoder  # noqa: E402


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
