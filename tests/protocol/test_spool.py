"""ResponseSpool and SpoolBudget (server/protocol/spool.py): bytes out exactly as they went in,
in memory up to the threshold, in a temporary file past it; the budget's bounds."""

import os
import random

from server.protocol.spool import PIECES_PER_TAKE, ResponseSpool, SpoolBudget, spooled_bytes


def take(spool: ResponseSpool, most: int) -> bytes:
    """The bytes of one take, joined (after checking the size it tells)."""
    pieces, size = spool.take(most)
    data = b"".join(pieces)
    assert len(data) == size
    return data


def drain(spool: ResponseSpool, most: int) -> bytes:
    out = bytearray()
    while data := take(spool, most):
        out += data
    return bytes(out)


def open_files(directory) -> dict[str, int]:
    """This process's open files in ``directory``: their sizes by name."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(directory)):
                found[target] = os.stat(f"/proc/self/fd/{fd}").st_size
        except OSError:
            continue
    return found


def test_small_pieces_stay_in_memory_and_come_out_in_order(tmp_path):
    spool = ResponseSpool(1024, str(tmp_path))
    for piece in (b"a" * 100, b"b" * 200, b"c" * 300):
        spool.append(piece)
    assert spool.size == 600 and not spool.overflowed
    assert take(spool, 250) == b"a" * 100  # whole pieces: the next would pass 250
    assert take(spool, 1000) == b"b" * 200 + b"c" * 300
    assert take(spool, 1000) == b"" and spool.size == 0
    assert not open_files(tmp_path)


def test_pieces_come_out_as_they_went_in_not_copied(tmp_path):
    """A take from memory hands the pieces themselves on (the loop writes them with one
    writev); past PIECES_PER_TAKE pieces, it joins them: a writev stays short."""
    spool = ResponseSpool(1 << 20, str(tmp_path))
    given = [bytes([i]) * 4096 for i in range(16)]
    for piece in given:
        spool.append(piece)
    pieces, size = spool.take(1 << 20)
    assert size == 16 * 4096 and len(pieces) == 16
    assert all(out is piece for out, piece in zip(pieces, given))
    many = [bytes([i]) for i in range(PIECES_PER_TAKE + 1)]
    for piece in many:
        spool.append(piece)
    assert spool.take(1 << 20) == ([b"".join(many)], len(many))
    for piece in many[:PIECES_PER_TAKE]:
        spool.append(piece)
    assert spool.take(1 << 20) == (many[:PIECES_PER_TAKE], PIECES_PER_TAKE)


def test_a_big_piece_given_to_an_empty_spool_stays_in_memory(tmp_path):
    spool = ResponseSpool(1024, str(tmp_path))
    spool.append(b"x" * 10_000)
    assert not spool.overflowed
    spool.append(b"y")  # past the threshold now: to the file
    assert spool.overflowed and len(open_files(tmp_path)) == 1
    assert drain(spool, 4096) == b"x" * 10_000 + b"y"


def test_interleaved_appends_and_takes_across_the_overflow_are_exact(tmp_path):
    rng = random.Random(7)
    spool = ResponseSpool(4096, str(tmp_path))
    sent, got = bytearray(), bytearray()
    for i in range(2000):
        if rng.random() < 0.6:
            piece = bytes([i % 256]) * rng.randint(1, 3000)
            spool.append(piece)
            sent += piece
        else:
            got += take(spool, rng.randint(1, 5000))
        assert spool.size == len(sent) - len(got)
    got += drain(spool, 5000)
    assert bytes(got) == bytes(sent)
    assert spool.overflowed  # the file was used (and starts over each time it is drained)
    spool.close()
    assert not open_files(tmp_path) and spool.size == 0


def test_a_drained_file_starts_over(tmp_path):
    spool = ResponseSpool(10, str(tmp_path))
    spool.append(b"m" * 10)
    spool.append(b"f" * 100)
    assert drain(spool, 64) == b"m" * 10 + b"f" * 100
    assert list(open_files(tmp_path).values()) == [0]  # its disk space given back
    spool.append(b"again")  # memory again: nothing waits in the file
    assert take(spool, 100) == b"again"
    spool.close()
    spool.close()  # idempotent
    assert not open_files(tmp_path)


def test_budget_bounds_try_take_and_counts_all():
    budget = SpoolBudget(100)
    before = spooled_bytes()
    assert budget.try_take(60) and not budget.try_take(41) and budget.try_take(40)
    assert budget.in_use == 100 and spooled_bytes() == before + 100
    budget.take(50)  # what goes without waiting is counted, over the limit
    assert budget.in_use == 150 and not budget.try_take(1)
    budget.give_back(150)
    assert budget.in_use == 0 and spooled_bytes() == before
