"""Content codings: request bodies decoded on demand, responses compressed as they stream.

    request.content ──raw bytes──► DecodingReader ──decoded bytes (bounded)──► read() / post()
    handler write() ──► ResponseCompressor ──compressed, flushed per write──► ResponseWriter

Decoding never inflates more than ``max_size + 1`` bytes in total: a small body
that would inflate past the bound (a decompression bomb) raises
``DecodedTooLarge`` (413) before the memory is spent, however many gzip members
the body holds (RFC 1952 s2.2: a gzip body may be several members, decoded one
after the other, as gzip(1) does). Bytes after the end of a deflate stream, or
after a gzip member that do not start another one, are a 400. A response compressor
flushes (``Z_SYNC_FLUSH``) after every write so that each piece the handler
writes can be decoded by the client as soon as it arrives.
"""

import zlib

from server.protocol.errors import BadRequest, HttpError, PayloadTooLarge

READ_SIZE = 64 * 1024

# wbits for zlib: gzip wrapper, zlib wrapper ("deflate" in HTTP, RFC 9110 s8.4.1.2)
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class DecodedTooLarge(PayloadTooLarge):
    """The decoded request body is larger than allowed."""


class UnsupportedEncoding(HttpError):
    status = 415


def request_coding(headers) -> str | None:
    """The Content-Encoding of a request body to undo; None for identity."""
    value = headers.get("Content-Encoding", "").strip().lower()
    if value in ("", "identity"):
        return None
    if value not in _WBITS:
        raise UnsupportedEncoding(f"Unsupported Content-Encoding: {value}")
    return value


class DecodingReader:
    """``readany()``/``read()`` over a raw body stream, decoding gzip or deflate."""

    def __init__(self, stream, coding: str, max_size: int):
        self._stream = stream
        self._coding = coding
        self._inflater = zlib.decompressobj(_WBITS[coding])
        self._held = b""  # input after a gzip member, for the next one
        self._max_size = max_size  # 0: unbounded
        self._produced = 0
        self._eof = False

    async def readany(self) -> bytes:
        while not self._eof:
            data = self._inflate_pending()
            if data:
                return data
            raw = await self._stream.readany()
            if not raw:
                self._finish()
                return b""
            data = self._inflate(raw)
            if data:
                return data
        return b""

    async def read(self) -> bytes:
        """The whole decoded body (within the bound)."""
        parts = []
        while data := await self.readany():
            parts.append(data)
        return b"".join(parts)

    def at_eof(self) -> bool:
        return self._eof

    def _room(self) -> int:
        if not self._max_size:
            return READ_SIZE
        return max(self._max_size + 1 - self._produced, 1)

    def _inflate(self, raw: bytes) -> bytes:
        """Decode ``raw`` up to the room left; what follows the end of a gzip member
        is held for the next member (bounded by one read of the raw stream)."""
        inflater = self._inflater
        try:
            data = inflater.decompress(raw, self._room())
        except zlib.error as exc:
            raise BadRequest(f"Cannot decode the {self._coding} request body: {exc}") from None
        if inflater.eof and inflater.unused_data:
            if self._coding == "deflate":
                raise BadRequest("Data after the end of the deflate request body")
            self._held = inflater.unused_data
            self._inflater = zlib.decompressobj(_WBITS[self._coding])
        return self._count(data)

    def _inflate_pending(self) -> bytes:
        """Output held back by the bound on the previous call, or the next members' (in
        order: none of the raw stream is read while input is held)."""
        while True:
            tail = self._held or self._inflater.unconsumed_tail
            if not tail:
                return b""
            self._held = b""
            data = self._inflate(tail)
            if data:
                return data

    def _count(self, data: bytes) -> bytes:
        self._produced += len(data)
        if self._max_size and self._produced > self._max_size:
            raise DecodedTooLarge(f"Decoded request body larger than {self._max_size} bytes")
        return data

    def _finish(self) -> None:
        self._eof = True
        if not self._inflater.eof:
            raise BadRequest(f"Truncated {self._coding} request body")


# -- responses ---------------------------------------------------------------


def negotiate(accept_encoding: str) -> str | None:
    """The coding to answer with, from Accept-Encoding: "gzip", "deflate" or None."""
    best, best_q = None, 0.0
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if name == "*":
            name = "gzip"
        if name in ("gzip", "deflate") and q > best_q:
            best, best_q = name, q
        elif name == "gzip" and q == best_q and best == "deflate":
            best = "gzip"  # prefer gzip on a tie
    return best


class ResponseCompressor:
    def __init__(self, coding: str):
        self._deflater = zlib.compressobj(6, zlib.DEFLATED, _WBITS[coding])

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` and flush, so the client can decode it at once."""
        return self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._deflater.flush(zlib.Z_FINISH)


def compress_whole(data: bytes, coding: str) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, _WBITS[coding])
    return deflater.compress(data) + deflater.flush(zlib.Z_FINISH)
