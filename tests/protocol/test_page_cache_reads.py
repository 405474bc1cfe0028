"""What the file sender asks the page cache, so the loop does not wait on the disk:
``read_cached`` (a block read on the loop only when the cache holds it) and ``cached_span``
(how much of a span ``sendfile`` may send from the loop), both by ``preadv`` with
``RWF_NOWAIT``."""

import os

import pytest

from helpers import write_uncached
from server.protocol.files import FILE_BLOCK, PAGE, cached_span, read_cached

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


def test_a_block_not_in_the_page_cache_is_not_read(tmp_path):
    path = tmp_path / "cold.bin"
    write_uncached(path, DATA * 4)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_cached(fd, 4096, 0) is None
        assert os.pread(fd, 4096, 0) == DATA[:4096]  # (what the executor's read does)
    finally:
        os.close(fd)


def test_a_descriptor_that_cannot_be_read_so_gives_none():
    """A pipe has no page cache to ask: None (the blocking read then decides)."""
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        assert read_cached(r, 1, 0) is None
    finally:
        os.close(r)
        os.close(w)


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(DATA * 64)  # 16 MiB
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


@pytest.fixture
def cold_file(tmp_path):
    path = tmp_path / "cold.bin"
    write_uncached(path, DATA * 64)  # 16 MiB, none of it in the page cache
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def test_a_cached_span_is_whole(big_file):
    assert cached_span(big_file, 0, len(DATA) * 64) == len(DATA) * 64
    assert cached_span(big_file, 1000, 3 * FILE_BLOCK + 7) == 3 * FILE_BLOCK + 7


@pytest.mark.parametrize("offset", [0, 1000])
def test_an_uncached_span_ends_at_its_first_probe_wherever_it_starts(cold_file, offset):
    """Nothing of the span is cached: it is empty, or, where the probe of its first page
    started the kernel's read of it (``RWF_NOWAIT`` reads ahead without waiting) and a fast
    disk finished that read before the kernel looked again, it ends at the next probe, on a
    page boundary: never the whole span, never past its first block."""
    span = cached_span(cold_file, offset, 4 * FILE_BLOCK)
    assert span == 0 or (span <= FILE_BLOCK and (offset + span) % PAGE == 0), span


def test_a_span_ends_at_the_first_page_the_cache_lacks(cold_file):
    """The first 2 blocks read in (and what the kernel reads ahead of them): the span is
    whole pages, at least those blocks, and not the whole 16 MiB."""
    os.pread(cold_file, 2 * FILE_BLOCK, 0)
    span = cached_span(cold_file, 0, len(DATA) * 64)
    assert 2 * FILE_BLOCK <= span < len(DATA) * 64, span
    assert span % PAGE == 0, span


def test_a_descriptor_without_a_page_cache_says_nothing_against_the_span():
    """(a pipe: the sender then goes on as it would without the probe)"""
    r, w = os.pipe()
    try:
        assert cached_span(r, 0, 4096) == 4096
    finally:
        os.close(r)
        os.close(w)
