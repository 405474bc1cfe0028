"""permessage-deflate (RFC 7692): negotiation, and per-message compression with zlib.

    Sec-WebSocket-Extensions offers ──negotiate()──► DeflateParams | None
                                                        │ .response_header()  (for the 101)
    compressed frames ──► Inflater (bounded by the message size limit: 1009) ──► payload
    payload ──► Deflater ──► compressed message (RSV1 on its first frame)

Negotiation (s7.1): the first acceptable offer wins. An offer is declined when it
has an unknown or repeated parameter or an invalid value (s5), or asks for
``server_max_window_bits=8``, which zlib cannot produce for raw deflate. The
response repeats what the offer asked of the server; ``client_max_window_bits``
is only answered when offered (its value is then ours to choose; we take the
client's or 15: we inflate with a full window anyway).
"""

import re
import zlib
from dataclasses import dataclass

from server.protocol.grammar import TCHAR

from .frames import CloseCode, WebSocketError

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # s7.2.1: removed by the sender, appended by the receiver
_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
           "server_max_window_bits", "client_max_window_bits")
_WINDOW_BITS = re.compile(r"(?:[89]|1[0-5])")

# Possessive (``*+``, ``++``, ``?+``): a client's header is matched in linear time,
# as no two parts of a pattern can take the same bytes.
_OWS = r"[ \t]*+"
_TOKEN = "[" + TCHAR.decode() + "]++"
_QUOTED = r'"(?:[^"\\]++|\\.)*+"'
_PARAM = rf"{_OWS};{_OWS}({_TOKEN})(?:{_OWS}={_OWS}({_TOKEN}|{_QUOTED}))?+"
_PARAM_LIST = rf"(?:{_OWS};{_OWS}{_TOKEN}(?:{_OWS}={_OWS}(?:{_TOKEN}|{_QUOTED}))?+)*+"  # no groups to repeat
_EXTENSION = re.compile(rf"{_OWS}({_TOKEN})({_PARAM_LIST}){_OWS}(?:,|$)")
_PARAM_RE = re.compile(_PARAM)


class ExtensionsSyntaxError(ValueError):
    pass


def parse_extensions(values: list[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``Sec-WebSocket-Extensions`` field values to ``[(name, [(param, value or None)])]``."""
    offers = []
    for value in values:
        pos, end = 0, len(value)
        while pos < end:
            if value[pos] in " \t,":  # empty list elements are allowed (RFC 9110 s5.6.1)
                pos += 1
                continue
            m = _EXTENSION.match(value, pos)
            if m is None:
                raise ExtensionsSyntaxError(f"Malformed Sec-WebSocket-Extensions: {value!r}")
            params = [(p.group(1).lower(), _unquote(p.group(2))) for p in _PARAM_RE.finditer(m.group(2))]
            offers.append((m.group(1).lower(), params))
            pos = m.end()
    return offers


def _unquote(value: str | None) -> str | None:
    if value is None or not value.startswith('"'):
        return value
    return re.sub(r"\\(.)", r"\1", value[1:-1])


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated parameters (s7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None  # None: not stated (15)
    client_max_window_bits: int | None = None  # None: not stated

    def response_header(self) -> str:
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


def negotiate(offers: list[tuple[str, list[tuple[str, str | None]]]]) -> DeflateParams | None:
    """Accept the first acceptable permessage-deflate offer, if any."""
    for name, params in offers:
        if name == EXTENSION_NAME:
            accepted = _accept_offer(params)
            if accepted is not None:
                return accepted
    return None


def _accept_offer(params: list[tuple[str, str | None]]) -> DeflateParams | None:
    seen: dict[str, str | None] = {}
    for name, value in params:
        if name not in _PARAMS or name in seen:
            return None
        seen[name] = value
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if flag in seen and seen[flag] is not None:
            return None
    server_bits = seen.get("server_max_window_bits")
    if "server_max_window_bits" in seen:
        if server_bits is None or not _WINDOW_BITS.fullmatch(server_bits) or server_bits == "8":
            return None
    client_bits = seen.get("client_max_window_bits")
    if client_bits is not None and not _WINDOW_BITS.fullmatch(client_bits):
        return None
    return DeflateParams(
        server_no_context_takeover="server_no_context_takeover" in seen,
        client_no_context_takeover="client_no_context_takeover" in seen,
        server_max_window_bits=int(server_bits) if server_bits else None,
        client_max_window_bits=(int(client_bits) if client_bits else 15) if "client_max_window_bits" in seen else None,
    )


class Inflater:
    """Decompresses the client's messages; the output is bounded by the caller's limit."""

    def __init__(self, params: DeflateParams):
        self._reset_each_message = params.client_no_context_takeover
        self._zlib = zlib.decompressobj(wbits=-15)

    def start_message(self) -> None:
        if self._reset_each_message:
            self._zlib = zlib.decompressobj(wbits=-15)

    def decompress(self, data: bytes, final: bool, limit: int = 0) -> bytes:
        """Inflate one frame's payload (``final``: the message's last frame).

        ``limit`` (0: none) is the most output allowed; more raises 1009 without
        inflating the rest, so a small "zip bomb" cannot fill memory."""
        if final:
            data += _TAIL
        try:
            out = self._zlib.decompress(data, limit + 1 if limit else 0)
        except zlib.error as exc:
            raise WebSocketError(CloseCode.PROTOCOL_ERROR, f"Invalid compressed data: {exc}") from None
        if limit and len(out) > limit:
            raise WebSocketError(CloseCode.MESSAGE_TOO_BIG, "Message too big")
        return out


class Deflater:
    """Compresses our messages, each ending on a sync flush (s7.2.1)."""

    def __init__(self, params: DeflateParams, level: int = 6, mem_level: int = 8):
        bits = params.server_max_window_bits or 15
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, -bits, mem_level)
        # A full flush also forgets the history: no context carried to the next message.
        self._flush = zlib.Z_FULL_FLUSH if params.server_no_context_takeover else zlib.Z_SYNC_FLUSH

    def compress(self, data: bytes) -> bytes:
        out = self._zlib.compress(data) + self._zlib.flush(self._flush)
        if out.endswith(_TAIL):
            out = out[:-4]
        return out

