"""HPACK encoding of response heads, reused while it stays the same.

hpack's encoder is pure Python: a response head of five fields costs about 9 us, a tenth
of a small HTTP/2 request here. A server sends the same head again and again (the same
status, type, length, server; the date changes once a second), and once its fields are
in the dynamic table, encoding it again inserts nothing and gives the same bytes as long
as the table does not change. So a block whose encoding changed nothing is kept, keyed by
the fields, and given again until the table changes: any insertion (counted by the table)
or a resize from the client's SETTINGS drops every block kept. The output is byte for
byte what hpack's encoder gives (tests/http2/test_h2_encoder.py checks both in lockstep).
"""

from hpack import Encoder
from hpack.table import HeaderTable

MAX_BLOCKS = 32  # heads kept per connection; more than that are not one server's few heads


class CountingTable(HeaderTable):
    """hpack's dynamic table, counting its insertions."""

    def __init__(self) -> None:
        super().__init__()
        self.insertions = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.insertions += 1
        super().add(name, value)


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
        if type(headers) is not list or any(type(field) is not tuple for field in headers):
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
