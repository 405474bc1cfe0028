"""``files.read_cached``: a block of a file read on the loop only when the page cache holds
it (``preadv`` with ``RWF_NOWAIT``), so the loop never waits on the disk."""

import os

import pytest

from helpers import drop_from_page_cache
from server.protocol.files import read_cached

DATA = bytes(range(256)) * 1024  # 256 KiB


@pytest.fixture
def cached_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def test_a_cached_block_is_read_whole(cached_file):
    assert read_cached(cached_file, 4096, 1000) == DATA[1000:5096]


def test_a_block_past_the_end_is_cut_to_the_file(cached_file):
    assert read_cached(cached_file, 8192, len(DATA) - 100) == DATA[-100:]


def test_at_the_end_of_the_file_it_answers_none(cached_file):
    """(the blocking read in the executor then tells the end of the file apart from a miss)"""
    assert read_cached(cached_file, 4096, len(DATA)) is None


def test_a_block_not_in_the_page_cache_is_not_read(cached_file):
    drop_from_page_cache(cached_file)
    assert read_cached(cached_file, 4096, 0) is None
    assert os.pread(cached_file, 4096, 0) == DATA[:4096]  # (what the executor's read does)


def test_a_descriptor_that_cannot_be_read_so_gives_none():
    """A pipe has no page cache to ask: None (the blocking read then decides)."""
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        assert read_cached(r, 1, 0) is None
    finally:
        os.close(r)
        os.close(w)
