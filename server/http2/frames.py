"""A look at each frame header the client sends, before hyper-h2 parses the frame.

    bytes ──FrameWatch.feed()──► counts and caps ──► (the same bytes) h2.receive_data()

hyper-h2 gathers a header block (HEADERS and its CONTINUATION frames) whole
before it decodes anything, and answers every PING and SETTINGS on its own. The
watch reads the 9-byte header of every frame as it passes (a few operations per
frame, no copy of the payloads) so the connection can bound what h2 would
otherwise take without limit:

- the bytes of one header block still open (a CONTINUATION flood): past
  ``max_block`` the connection ends with ENHANCE_YOUR_CALM, before h2 holds more;
- ``answers``: PING and SETTINGS frames that each make h2 write an answer (the
  connection stops answering a client that sends them without reading);
- ``block_open``: a header block is in progress (its time is bounded, like an
  HTTP/1.1 head's).
"""

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEADER = struct.Struct(">HBBB")  # a frame header's length (high 16 bits, low 8), type and flags

_HEADERS, _SETTINGS, _PING, _CONTINUATION = 0x1, 0x4, 0x6, 0x9
_END_HEADERS, _ACK = 0x4, 0x1


class FloodError(Exception):
    """The client sent more than a bound allows: the connection ends (ENHANCE_YOUR_CALM)."""


class FrameWatch:
    __slots__ = ("max_block", "block", "block_open", "answers", "_skip", "_partial", "_left")

    def __init__(self, max_block: int, preface: bool = True):
        self.max_block = max_block  # bytes of one header block (HEADERS + CONTINUATION payloads)
        self.block = 0
        self.block_open = False
        self.answers = 0  # PING and SETTINGS frames (not acknowledgements) seen so far
        self._skip = len(PREFACE) if preface else 0  # the client's preface is not a frame
        self._partial = b""  # the start of a frame header split between reads
        self._left = 0  # payload bytes of the current frame still to come

    def feed(self, data: bytes) -> None:
        """Read the frame headers in ``data``; raises ``FloodError`` past a bound."""
        pos = 0
        size = len(data)
        if self._skip:
            pos = min(self._skip, size)
            self._skip -= pos
        while pos < size:
            if self._left:
                step = min(self._left, size - pos)
                self._left -= step
                pos += step
                continue
            partial = self._partial
            need = 9 - len(partial)
            if size - pos < need:
                self._partial += data[pos:]
                return
            if partial:
                self._partial = b""
                self._frame(partial + data[pos:pos + need], 0)
            else:
                self._frame(data, pos)
            pos += need

    def _frame(self, data: bytes, at: int) -> None:
        """The frame whose header starts at ``data[at]``."""
        high, low, kind, flags = _HEADER.unpack_from(data, at)
        length = high << 8 | low
        self._left = length
        if kind == _HEADERS or (kind == _CONTINUATION and self.block_open):
            if kind == _HEADERS:
                self.block = 0
            self.block += length
            if self.block > self.max_block:
                raise FloodError(f"header block over {self.max_block} bytes")
            self.block_open = not flags & _END_HEADERS
        elif (kind == _PING or kind == _SETTINGS) and not flags & _ACK:
            self.answers += 1
