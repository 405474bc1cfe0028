"""WebSocket frames (RFC 6455 s5), sans-IO: bytes in, messages out; and frames out.

    bytes ──feed()──► FrameParser ──► [Message(TEXT|BINARY|PING|PONG|CLOSE, data, extra), ...]
                          │ WebSocketError(code, reason): fail the connection with ``code``

The parser checks every rule a server must enforce on client frames and stops at
the first violation with the close code to send:

* 1002 (protocol error): unmasked frame, reserved bits or opcodes, a control frame
  that is fragmented or longer than 125 bytes, a continuation without a message,
  a new message inside a fragmented one, a 64-bit length with its top bit set, a
  length not in its shortest form (s5.2: "the minimal number of bytes MUST be
  used"), a close frame with a 1-byte payload or a code that may not be sent.
* 1007 (invalid data): text or a close reason that is not UTF-8. Fragmented text is
  validated incrementally, so a bad sequence fails as soon as it arrives.
* 1009 (too big): a message, after decompression, larger than ``max_message_size``.
  The length in a frame header is checked before the payload is buffered.

Frames are reassembled into messages; control frames may come between the
fragments of a message. After a close frame the parser returns nothing more.
With permessage-deflate, RSV1 on the first frame marks a compressed message.
"""

import codecs
import enum
import json
import struct
from typing import NamedTuple

MAX_CONTROL_PAYLOAD = 125
_UNBOUNDED = 1 << 63


class Opcode(enum.IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class MsgType(enum.IntEnum):
    """Message types; the values are aiohttp's ``WSMsgType`` (the frame opcodes, then states)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    PING = 0x9
    PONG = 0xA
    CLOSE = 0x8
    CLOSING = 0x100
    CLOSED = 0x101
    ERROR = 0x102


class Message(NamedTuple):
    """A received message. For CLOSE, ``data`` is the close code and ``extra`` the reason."""

    type: MsgType
    data: object
    extra: object = None

    def json(self, *, loads=json.loads):
        return loads(self.data)


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent: a close frame without a code
    ABNORMAL = 1006  # never sent: the connection was lost without a close frame
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


class WebSocketError(Exception):
    """The peer broke the protocol: fail the connection with close ``code``."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def protocol_error(reason: str) -> WebSocketError:
    return WebSocketError(CloseCode.PROTOCOL_ERROR, reason)


def sendable_close_code(code: int) -> bool:
    """May ``code`` appear in a close frame? (RFC 6455 s7.4, IANA registry)"""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY)
_KNOWN_OPCODES = frozenset(int(op) for op in Opcode)


# -- writing --------------------------------------------------------------------

def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (masking and unmasking are the same)."""
    n = len(data)
    if n == 0:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


def frame_header(opcode: int, length: int, fin: bool = True, rsv1: bool = False,
                 mask: bytes | None = None) -> bytes:
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        head = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    return head + mask if mask is not None else head


def build_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv1: bool = False,
                mask: bytes | None = None) -> bytes:
    """One frame. Server frames are unmasked; ``mask`` (4 bytes) builds a client frame."""
    if opcode >= Opcode.CLOSE and (len(payload) > MAX_CONTROL_PAYLOAD or not fin):
        raise ValueError("control frames carry at most 125 bytes and are never fragmented")
    body = apply_mask(payload, mask) if mask is not None else payload
    return frame_header(opcode, len(payload), fin, rsv1, mask) + body


def close_payload(code: int | None = CloseCode.NORMAL, reason: str = "") -> bytes:
    """The payload of a close frame; ``code=None`` gives an empty one (no status)."""
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not sendable_close_code(code):
        raise ValueError(f"close code {code} may not be sent")
    payload = struct.pack("!H", code) + reason.encode("utf-8")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError("close reason longer than 123 bytes")
    return payload


def parse_close(payload: bytes) -> tuple[int, str]:
    """``(code, reason)`` of a received close frame; 1005 when it has no code."""
    if not payload:
        return CloseCode.NO_STATUS, ""
    if len(payload) == 1:
        raise protocol_error("Close frame with a 1-byte payload")
    (code,) = struct.unpack_from("!H", payload)
    if not sendable_close_code(code):
        raise protocol_error(f"Invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(CloseCode.INVALID_DATA, "Close reason is not UTF-8") from None
    return code, reason


# -- parsing --------------------------------------------------------------------

class FrameParser:
    """Client frames in, messages out. ``deflate``: an ``Inflater`` when negotiated."""

    def __init__(self, max_message_size: int = 0, deflate=None, require_mask: bool = True):
        self.max_message_size = max_message_size or _UNBOUNDED
        self.inflater = deflate
        self.require_mask = require_mask
        self._buf = bytearray()
        self._closed = False
        self._opcode: int | None = None  # data message in progress
        self._compressed = False
        self._parts: list = []
        self._size = 0  # bytes of the message so far (decompressed)
        self._decoder = None
        self.last_size = 0  # payload bytes of the message last returned

    @property
    def closed(self) -> bool:
        """A close frame was parsed (or an error raised): nothing more will be returned."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes received and not parsed yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Take more bytes; return every message they complete."""
        self.receive_data(data)
        messages = []
        while (message := self.next_message()) is not None:
            messages.append(message)
        return messages

    def receive_data(self, data: bytes) -> None:
        """Take more bytes without parsing them: ``next_message()`` does, one message at a time
        (so a caller can stop while its queue is full, leaving the rest as compressed bytes)."""
        if not self._closed:
            self._buf += data

    def next_message(self) -> Message | None:
        """The next message the buffered bytes complete, or None for now.

        ``last_size`` is then its payload size in bytes (decompressed, UTF-8 for text)."""
        try:
            while not self._closed:
                frame = self._next_frame()
                if frame is None:
                    return None
                message = self._on_frame(*frame)
                if message is not None:
                    return message
        except WebSocketError:
            self._closed = True
            self._buf.clear()
            raise
        return None

    def _next_frame(self):
        """``(fin, rsv1, opcode, payload)`` of the next whole frame, or None for now."""
        buf = self._buf
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        fin, rsv1, opcode = bool(first & 0x80), bool(first & 0x40), first & 0x0F
        masked, length = bool(second & 0x80), second & 0x7F
        self._check_header(fin, first & 0x70, opcode, masked, length)
        offset = 2
        if length == 126:
            if len(buf) < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, 2)
            if length < 126:
                raise protocol_error("Frame length not in its shortest form")
            offset = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, 2)
            if length >> 63:
                raise protocol_error("Frame length with its most significant bit set")
            if length < 1 << 16:
                raise protocol_error("Frame length not in its shortest form")
            offset = 10
        if opcode < Opcode.CLOSE:
            self._check_data_length(length, rsv1 if opcode else self._compressed)
        end = offset + (4 if masked else 0) + length
        if len(buf) < end:
            return None
        if masked:
            mask = bytes(buf[offset:offset + 4])
            payload = apply_mask(bytes(buf[offset + 4:end]), mask)
        else:
            payload = bytes(buf[offset:end])
        del buf[:end]
        return fin, rsv1, opcode, payload

    def _check_header(self, fin: bool, rsv: int, opcode: int, masked: bool, length: int) -> None:
        if opcode not in _KNOWN_OPCODES:
            raise protocol_error(f"Reserved opcode {opcode:#x}")
        if rsv & 0x30:
            raise protocol_error("Reserved bits RSV2/RSV3 set")
        if rsv & 0x40 and (self.inflater is None or opcode not in _DATA_OPCODES):
            raise protocol_error("RSV1 set without a compressed message")
        if self.require_mask and not masked:
            raise protocol_error("Client frame not masked")
        if opcode >= Opcode.CLOSE:
            if not fin:
                raise protocol_error("Fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                raise protocol_error("Control frame longer than 125 bytes")
        elif opcode == Opcode.CONTINUATION:
            if self._opcode is None:
                raise protocol_error("Continuation frame without a message to continue")
        elif self._opcode is not None:
            raise protocol_error("New data frame inside a fragmented message")

    def _check_data_length(self, length: int, compressed: bool) -> None:
        """Refuse a frame before buffering it when its payload cannot fit the limit.

        Compressed payloads are checked after decompression; their wire size is
        only bounded loosely (deflate expands incompressible data a little)."""
        limit = self.max_message_size
        if compressed:
            limit = limit + limit // 16 + 1024
        if self._size + length > limit:
            raise WebSocketError(CloseCode.MESSAGE_TOO_BIG, "Message too big")

    def _on_frame(self, fin: bool, rsv1: bool, opcode: int, payload: bytes):
        if opcode >= Opcode.CLOSE:
            return self._on_control(opcode, payload)
        if opcode != Opcode.CONTINUATION:
            self._opcode = opcode
            self._compressed = rsv1
            if opcode == Opcode.TEXT:
                self._decoder = codecs.getincrementaldecoder("utf-8")()
            if rsv1:
                self.inflater.start_message()
        data = payload
        if self._compressed:
            room = self.max_message_size - self._size
            data = self.inflater.decompress(payload, fin, room if room < _UNBOUNDED // 2 else 0)
        self._size += len(data)
        if self._size > self.max_message_size:
            raise WebSocketError(CloseCode.MESSAGE_TOO_BIG, "Message too big")
        if self._opcode == Opcode.TEXT:
            try:
                data = self._decoder.decode(data, fin)
            except UnicodeDecodeError:
                raise WebSocketError(CloseCode.INVALID_DATA, "Text message is not UTF-8") from None
        self._parts.append(data)
        if not fin:
            return None
        return self._finish_message()

    def _finish_message(self) -> Message:
        parts, self._parts = self._parts, []
        if self._opcode == Opcode.TEXT:
            message = Message(MsgType.TEXT, parts[0] if len(parts) == 1 else "".join(parts))
        else:
            message = Message(MsgType.BINARY, parts[0] if len(parts) == 1 else b"".join(parts))
        self.last_size = self._size
        self._opcode = None
        self._compressed = False
        self._size = 0
        self._decoder = None
        return message

    def _on_control(self, opcode: int, payload: bytes) -> Message:
        self.last_size = len(payload)
        if opcode == Opcode.PING:
            return Message(MsgType.PING, payload)
        if opcode == Opcode.PONG:
            return Message(MsgType.PONG, payload)
        code, reason = parse_close(payload)
        self._closed = True
        return Message(MsgType.CLOSE, code, reason)
