"""The default ``wsgi.input`` (server/wsgi/body.py ``SpooledBody``): a body up to the
threshold stays in memory as the pieces it came in (``MemoryInput``), a larger one goes
to a temporary file; every read gives the same bytes as a file of the body would."""

import io
import os

import pytest

from server.protocol.pieces import SMALL_PIECE
from server.wsgi.body import EMPTY_INPUT, MemoryInput, SpooledBody

LARGE = b"L" * (SMALL_PIECE + 3)
PIECES = [b"a", b"b\n", LARGE, b"c", b"\n", b"d" * 10, LARGE + b"\n", b"e"] + [b"\n"] * 2000 + [b"end"]
BODY = b"".join(PIECES)


def spooled(threshold: int, tmp_path, pieces=PIECES):
    """The input a SpooledBody hands to the app after ``pieces``, and the size it reports."""
    got = []
    sink = SpooledBody(threshold, str(tmp_path), lambda body, size: got.append((body, size)))
    for piece in pieces:
        sink.feed_data(piece)
    sink.feed_eof()
    (body, size), = got
    return body, size


READS = {
    "read": lambda s: s.read(),
    "read_7": lambda s: b"".join(iter(lambda: s.read(7), b"")),
    "read_big": lambda s: b"".join(iter(lambda: s.read(65536), b"")),
    "readinto_9": lambda s: b"".join(iter(lambda: _readinto(s, 9), b"")),
    "readlines": lambda s: b"".join(s.readlines()),
    "readline_5": lambda s: b"".join(iter(lambda: s.readline(5), b"")),
    "iter": lambda s: b"".join(s),
}


def _readinto(stream, n: int) -> bytes:
    buffer = bytearray(n)
    return bytes(buffer[:stream.readinto(buffer)])


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
@pytest.mark.parametrize("threshold", [1 << 20, 0, 2000], ids=["memory", "file", "spilled-midway"])
def test_every_read_gives_the_body(read, threshold, tmp_path):
    body, size = spooled(threshold, tmp_path)
    assert size == len(BODY)
    assert isinstance(body, MemoryInput) == (threshold >= len(BODY))
    assert read(body) == BODY
    assert body.read() == b"" and body.readline() == b""


def test_the_reads_agree_with_a_file_of_the_body_mixed_and_after_seeks(tmp_path):
    body, _ = spooled(1 << 20, tmp_path)
    reference = io.BytesIO(BODY)
    steps = [("read", 3), ("readline", -1), ("read", 1500), ("seek", 5), ("readline", 4),
             ("tell",), ("seek", -10, io.SEEK_END), ("read", -1), ("seek", 2, io.SEEK_SET),
             ("seek", 1030, io.SEEK_CUR), ("read", 20), ("tell",), ("seek", 10 ** 6), ("read", 5)]
    for name, *args in steps:
        assert getattr(body, name)(*args) == getattr(reference, name)(*args), (name, args)


def test_a_piece_read_whole_is_the_piece_itself(tmp_path):
    piece = os.urandom(256 * 1024)
    body, _ = spooled(1 << 20, tmp_path, [piece, piece])
    assert body.read(len(piece)) is piece  # no copy of a socket read
    assert body.read() is piece


def test_tiny_pieces_are_held_in_one_buffer(tmp_path):
    body, _ = spooled(1 << 20, tmp_path, [b"x"] * 10000)
    assert len(body._pieces) <= 2  # (the first as it came, the rest joined) not 10,000 objects
    assert body.read() == b"x" * 10000


def test_past_the_threshold_the_body_is_a_file_and_memory_is_let_go(tmp_path):
    sink = SpooledBody(4096, str(tmp_path), lambda body, size: None)
    sink.feed_data(b"a" * 4096)
    assert sink._file is None
    sink.feed_data(b"b")
    assert sink._file is not None and sink._pieces == []


def test_a_body_that_never_completes_leaves_no_file(tmp_path):
    sink = SpooledBody(10, str(tmp_path), lambda body, size: pytest.fail("the app got a broken body"))
    sink.feed_data(b"a" * 100)
    file = sink._file
    assert sink.set_exception(ConnectionResetError()) is False
    assert file.closed


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_the_input_of_a_request_without_a_body_reads_as_an_empty_body(read):
    """EMPTY_INPUT (every bodyless request's wsgi.input) is at its end however it is read, and
    seeks and tells as an empty body's MemoryInput does; closing it changes nothing for the next."""
    assert read(EMPTY_INPUT) == b""
    reference = MemoryInput([])
    steps = [("read", 3), ("readline", -1), ("tell",), ("seek", 0), ("seek", 0, io.SEEK_END), ("read", -1),
             ("seek", 5), ("read", 5), ("seek", 0, io.SEEK_CUR), ("tell",), ("seekable",), ("readable",)]
    for name, *args in steps:
        assert getattr(EMPTY_INPUT, name)(*args) == getattr(reference, name)(*args), (name, args)
    for args in ((-1,), (-1, io.SEEK_END), (-1, io.SEEK_CUR), (0, 7)):
        with pytest.raises(ValueError):
            EMPTY_INPUT.seek(*args)
    EMPTY_INPUT.close()
    assert EMPTY_INPUT.read() == b"" and EMPTY_INPUT.tell() == 0
