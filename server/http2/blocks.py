"""HPACK header blocks, encoded and decoded once while the tables stay the same.

hpack is pure Python: encoding a response head of five fields costs about 9 us, a tenth
of a small HTTP/2 request here, and decoding a request's head as much again.

Encoding (``ReusingEncoder``): A server sends the same head again and again (the same
status, type, length, server; the date changes once a second), and once its fields are
in the dynamic table, encoding it again inserts nothing and gives the same bytes as long
as the table does not change. So a block whose encoding changed nothing is kept, keyed by
the fields, and given again until the table changes: any insertion (counted by the table)
or a resize from the client's SETTINGS drops every block kept. The output is byte for
byte what hpack's encoder gives (tests/http2/test_h2_blocks.py checks both in lockstep).

Decoding (``ReusingDecoder``): a client sends the same request head again and again too,
and once its fields are in the table every one is a one-byte index: the block is the same
bytes, and decoding it changes nothing in the table. Its fields are kept, keyed by the
block, and given again while the table does not change (no insertion, no resize). Only
short blocks of a few fields are kept, and a few of them, so what a connection keeps is
bounded whatever its client sends (``MAX_DECODED`` x ``MAX_DECODED_BLOCK`` bytes of blocks,
their fields being at most one per byte). The fields are hpack's decoder's, in lockstep
(tests/http2/test_h2_blocks.py).
"""

from hpack import Decoder, Encoder
from hpack.table import HeaderTable

MAX_BLOCKS = 32  # heads kept per connection; more than that are not one server's few heads
MAX_DECODED = 8  # request heads kept per connection
MAX_DECODED_BLOCK = 64  # bytes: a longer block is decoded each time


class CountingTable(HeaderTable):
    """hpack's dynamic table, counting its insertions and its changes (insertions and resizes)."""

    def __init__(self) -> None:
        super().__init__()
        self.insertions = 0
        self.changes = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.insertions += 1
        self.changes += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        self.changes += 1
        HeaderTable.maxsize.fset(self, value)


def _tuples(headers: list) -> bool:
    for field in headers:
        if type(field) is not tuple:
            return False
    return True


class ReusingEncoder(Encoder):
    """hpack's encoder, giving a block again while encoding it would change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.header_table = CountingTable()
        self._blocks: dict = {}

    def encode(self, headers, huffman: bool = True) -> bytes:
        table = self.header_table
        if table.resized:  # (the block will carry the size update; the indices moved)
            self._blocks.clear()
            return super().encode(headers, huffman)
        # Plain tuples only: hpack's HeaderTuple kinds (never indexed) equal plain ones but
        # encode otherwise; a dict or fields that do not hash are not kept either.
        if type(headers) is not list or not _tuples(headers):
            return super().encode(headers, huffman)
        try:
            key = (huffman, *headers)
            block = self._blocks.get(key)
        except TypeError:
            return super().encode(headers, huffman)
        if block is not None:
            return block
        insertions = table.insertions
        block = super().encode(headers, huffman)
        if table.insertions != insertions:
            self._blocks.clear()  # the table changed: what was kept no longer holds
        else:
            if len(self._blocks) >= MAX_BLOCKS:
                self._blocks.clear()
            self._blocks[key] = block
        return block


class ReusingDecoder(Decoder):
    """hpack's decoder, giving a short block's fields again while decoding it would change nothing."""

    def __init__(self, max_header_list_size: int) -> None:
        super().__init__(max_header_list_size)
        self.header_table = CountingTable()
        self._lists: dict = {}
        self._changes = 0  # the table's count of changes when the kept fields were decoded
        self._limit = max_header_list_size  # the bound they were decoded under

    def decode(self, data, raw: bool = False):
        if not raw or type(data) is not bytes or len(data) > MAX_DECODED_BLOCK:
            return super().decode(data, raw)
        table = self.header_table
        if table.changes != self._changes or self.max_header_list_size != self._limit:
            self._lists.clear()
            self._changes = table.changes
            self._limit = self.max_header_list_size
        fields = self._lists.get(data)
        if fields is not None:
            self._assert_valid_table_size()  # (as hpack checks after each block)
            return list(fields)
        fields = super().decode(data, raw)
        if table.changes == self._changes:
            if len(self._lists) >= MAX_DECODED:
                self._lists.clear()
            self._lists[data] = tuple(fields)
        return fields
