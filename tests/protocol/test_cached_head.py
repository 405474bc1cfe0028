"""The compiled ``cached_head`` (_chead.c) against its reference, ``heads.cached_head_py``:
the cached head of a response and its bytes with the current Date, in one call."""

import email.utils
import time

import pytest

from helpers import assert_no_leak
from server.protocol import writer
from server.protocol.compiled import compiled
from server.protocol.heads import Head, HeadCache, cached_head_py

compiled_head = compiled("cached_head")
pytestmark = pytest.mark.skipif(compiled_head is None, reason="the compiled helpers are not in use "
                                                              "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
FIELDS = (("Content-Type", "text/plain"), ("Content-Length", "14"))
V11 = (1, 1)


def filled() -> HeadCache:
    heads = HeadCache(b"asyncworker")
    heads.head(200, "OK", FIELDS, "GET", V11, True)  # declared length
    heads.head(200, "OK", FIELDS, "HEAD", V11, True)
    heads.head(404, None, (("Content-Type", "text/html"),), "GET", (1, 0), False)
    heads.head(200, "OK", (("Content-Type", "text/plain"),), "GET", V11, True, 14)  # sized
    heads.head(200, "OK", (("Content-Type", "text/plain"),), "GET", V11, True)  # chunked
    return heads


KEYS = [
    (200, "OK", FIELDS, False, V11, True, None),
    (200, "OK", FIELDS, True, V11, True, None),
    (404, None, (("Content-Type", "text/html"),), False, (1, 0), False, None),
    (200, "OK", (("Content-Type", "text/plain"),), False, V11, True, 14),
    (200, "OK", (("Content-Type", "text/plain"),), False, V11, True, 99),  # the sized head, another size
    (200, "OK", (("Content-Type", "text/plain"),), False, V11, True, None),
]


@pytest.mark.parametrize("key", KEYS)
def test_a_hit_is_the_reference_hit(key):
    heads = filled()
    got, want = compiled_head(heads.cache, *key), cached_head_py(heads.cache, *key)
    assert got is not None
    assert got[0] is want[0] and got[1] == want[1]
    assert b"\r\nDate: " + writer.http_date() + b"\r\n" in got[1]


def test_the_sized_head_gets_the_size():
    heads = filled()
    _, data = compiled_head(heads.cache, 200, "OK", (("Content-Type", "text/plain"),), False, V11, True, 99)
    assert b"\r\nContent-Length: 99\r\n" in data


@pytest.mark.parametrize("key", [
    (200, "OK", FIELDS, False, V11, False, None),  # not kept alive
    (201, "Created", FIELDS, False, V11, True, None),
    (200, "OK", FIELDS, False, V11, True, 14),  # with a body size: another key
    (200, "OK", FIELDS[:1], False, (1, 0), True, None),
])
def test_a_miss_is_none(key):
    heads = filled()
    assert compiled_head(heads.cache, *key) is None and cached_head_py(heads.cache, *key) is None


def test_fields_that_cannot_be_a_key_raise_type_error():
    heads = filled()
    for impl in (compiled_head, cached_head_py):
        with pytest.raises(TypeError):
            impl(heads.cache, 200, "OK", [["Content-Type", "text/plain"]], False, V11, True, None)


def test_the_bytes_are_kept_within_a_second_and_made_again_with_a_new_date():
    heads = filled()
    key = KEYS[0]
    first = compiled_head(heads.cache, *key)[1]
    if writer._date_cache[0] == int(time.time()):  # (not across a second's boundary)
        assert compiled_head(heads.cache, *key)[1] is first
    head = heads.cache[(*key[:6], False)]
    stale = b"Thu, 01 Jan 1970 00:00:00 GMT"
    head._date, head._bytes = stale, first.replace(writer.http_date(), stale)  # made in another second
    writer._date_cache[0], writer._date_cache[1] = 0, stale  # (http_date() makes it again)
    data = compiled_head(heads.cache, *key)[1]
    assert stale not in data and b"\r\nDate: " + writer.http_date() + b"\r\n" in data
    assert head._bytes is data and head._date is writer.http_date()
    assert data == cached_head_py(heads.cache, *key)[1]
    date = data.split(b"\r\nDate: ")[1].split(b"\r\n")[0].decode()
    assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 2


def test_another_kind_of_head_answers_by_its_own_bytes():
    class OwnHead:
        def bytes(self, size):
            return b"own %d" % size

    own = OwnHead()
    cache = {(200, "OK", (), False, V11, True, True): own}
    assert compiled_head(cache, 200, "OK", (), False, V11, True, 7) == (own, b"own 7")


def test_the_head_type_is_checked_when_registered():
    register = compiled("set_response_head_type")

    class NoSlots:
        pass

    with pytest.raises(TypeError, match="writable slot"):
        register(NoSlots, writer._date_cache, writer.http_date)
    with pytest.raises(TypeError):
        register(Head, (0, b""), writer.http_date)
    register(Head, writer._date_cache, writer.http_date)  # (what heads.py registers, again)


def test_it_does_not_leak():
    heads = filled()
    cache = heads.cache

    def run(n):
        for _ in range(n):
            for key in KEYS:
                compiled_head(cache, *key)
            compiled_head(cache, 500, "x", (), False, V11, True, None)

    assert_no_leak(run, shared=(cache, *cache.values()))
