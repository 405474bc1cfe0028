"""FrameWatch reads the header of every frame a client sends, whatever the reads' cuts:
its counts (PING/SETTINGS to answer, the open header block and its size) and its cap on a
header block are those of the frames, read one by one."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.http2.frames import PREFACE, FloodError, FrameWatch

HEADERS, SETTINGS, PING, CONTINUATION, DATA = 0x1, 0x4, 0x6, 0x9, 0x0


def frame(kind: int, flags: int, length: int) -> bytes:
    return length.to_bytes(3, "big") + bytes([kind, flags]) + (1).to_bytes(4, "big") + b"\0" * length


def expected(frames, max_block: int):
    """(answers, block_open, FloodError raised) of ``frames`` read one by one."""
    answers, block, block_open = 0, 0, False
    for kind, flags, length in frames:
        if kind == HEADERS or (kind == CONTINUATION and block_open):
            block = length if kind == HEADERS else block + length
            if block > max_block:
                return answers, block_open, True
            block_open = not flags & 0x4
        elif kind in (PING, SETTINGS) and not flags & 0x1:
            answers += 1
    return answers, block_open, False


frames = st.lists(st.tuples(st.sampled_from([HEADERS, SETTINGS, PING, CONTINUATION, DATA]),
                            st.sampled_from([0, 0x1, 0x4, 0x5]), st.integers(0, 40)), max_size=12)


@settings(max_examples=400, deadline=None)
@given(frames, st.lists(st.integers(0, 1000), max_size=8), st.sampled_from([30, 60, 1000]))
def test_any_cut_reads_the_frames_as_one_by_one(sent, cuts, max_block):
    data = PREFACE + b"".join(frame(*f) for f in sent)
    watch = FrameWatch(max_block)
    bounds = [0, *sorted(set(c % (len(data) + 1) for c in cuts)), len(data)]
    flooded = False
    try:
        for start, end in zip(bounds, bounds[1:]):
            watch.feed(data[start:end])
    except FloodError:
        flooded = True
    answers, block_open, flood = expected(sent, max_block)
    assert flooded == flood
    assert watch.answers == answers
    if not flood:
        assert watch.block_open == block_open


def test_a_header_block_over_its_cap_is_refused_before_the_rest_comes():
    watch = FrameWatch(100)
    watch.feed(PREFACE + frame(HEADERS, 0, 60)[:20])
    assert watch.block_open
    with pytest.raises(FloodError):
        watch.feed(frame(HEADERS, 0, 60)[20:] + frame(CONTINUATION, 0, 41)[:9])
