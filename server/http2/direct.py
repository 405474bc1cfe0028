"""h2's connection with its hot paths made direct: the same state, the same bytes, less work.

hyper-h2 builds a hyperframe object for every frame it sends, with a set of flag names,
and then serializes it; it also formats every frame it receives for a trace log that is
off. Per small request, that is a quarter of the time h2 spends. ``DirectConnection``:

- ``send_headers`` and ``send_data`` on a stream the client opened make the same state
  transitions (h2's own state machines, connection and stream) and write the frames'
  bytes themselves: a 9-byte header and the payload (HEADERS, CONTINUATION past the
  frame size, DATA). What they cannot do as h2 does (padding, priority, a stream h2
  does not hold, headers that are not bytes, h2's outbound header checks when they are
  on) goes to h2's own methods.
- ``_receive_frame`` is h2's, without formatting the frame for the trace log.

tests/http2/test_h2_direct.py drives this class and h2's own in lockstep (the same calls,
the same frames received) and compares every byte written and every stream's state.
"""

import struct

from h2.connection import ConnectionInputs
from h2.errors import ErrorCodes
from h2.exceptions import (FlowControlError, FrameTooLargeError, ProtocolError, StreamClosedError,
                           StreamIDTooLowError)
from h2.stream import StreamInputs
from hyperframe.frame import RstStreamFrame

from .malformed import StreamErrorsConnection

_HEADER = struct.Struct(">HBBBL").pack  # (length >> 8, length & 0xFF, type, flags, stream id)
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4


def frame_header(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return _HEADER(length >> 8, length & 0xFF, kind, flags, stream_id)


class DirectConnection(StreamErrorsConnection):
    def send_headers(self, stream_id, headers, end_stream=False, priority_weight=None, priority_depends_on=None,
                     priority_exclusive=None) -> None:
        stream = self.streams.get(stream_id)
        config = self.config
        if (stream is None or priority_weight is not None or priority_depends_on is not None
                or priority_exclusive is not None or config.normalize_outbound_headers
                or config.validate_outbound_headers or not _plain(headers)):
            return super().send_headers(stream_id, headers, end_stream, priority_weight, priority_depends_on,
                                        priority_exclusive)
        self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        machine = stream.state_machine
        informational = not machine.client and _informational(headers)
        if informational and end_stream:
            raise ProtocolError("Cannot set END_STREAM on informational responses.")
        machine.process_input(StreamInputs.SEND_INFORMATIONAL_HEADERS if informational else StreamInputs.SEND_HEADERS)
        block = self.encoder.encode(headers)
        if end_stream:
            machine.process_input(StreamInputs.SEND_END_STREAM)
        if machine.trailers_sent and not end_stream:
            raise ProtocolError("Trailers must have END_STREAM set.")
        stream.request_method = None  # (h2 keeps the :method of what it sent: a response has none)
        self._write_block(stream_id, block, stream.max_outbound_frame_size, _END_STREAM if end_stream else 0)

    def _write_block(self, stream_id: int, block: bytes, size: int, flags: int) -> None:
        """HEADERS, then CONTINUATION frames while the block is longer than a frame."""
        out = self._data_to_send
        if len(block) <= size:
            out += frame_header(len(block), _HEADERS, flags | _END_HEADERS, stream_id)
            out += block
            return
        pieces = [block[i:i + size] for i in range(0, len(block), size)]
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            kind = _HEADERS if i == 0 else _CONTINUATION
            piece_flags = (flags if i == 0 else 0) | (_END_HEADERS if i == last else 0)
            out += frame_header(len(piece), kind, piece_flags, stream_id)
            out += piece

    def send_data(self, stream_id, data, end_stream=False, pad_length=None) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or pad_length is not None or type(data) is not bytes:
            return super().send_data(stream_id, data, end_stream, pad_length)
        size = len(data)
        if size > 0 and size > min(self.outbound_flow_control_window, stream.outbound_flow_control_window):
            raise FlowControlError(f"Cannot send {size} bytes, flow control window is "
                                   f"{self.local_flow_control_window(stream_id)}")
        if size > self.max_outbound_frame_size:
            raise FrameTooLargeError(f"Cannot send frame size {size}, max frame size is "
                                     f"{self.max_outbound_frame_size}")
        self.state_machine.process_input(ConnectionInputs.SEND_DATA)
        machine = stream.state_machine
        machine.process_input(StreamInputs.SEND_DATA)
        if end_stream:
            machine.process_input(StreamInputs.SEND_END_STREAM)
        stream.outbound_flow_control_window -= size
        self.outbound_flow_control_window -= size
        out = self._data_to_send
        out += frame_header(size, _DATA, _END_STREAM if end_stream else 0, stream_id)
        out += data

    def _receive_frame(self, frame):
        """h2's, without ``repr(frame)`` for its trace log on every frame."""
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except StreamClosedError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = e.error_code
                self._prepare_for_sending([f])
                events = e._events
            else:
                raise
        except StreamIDTooLowError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = ErrorCodes.STREAM_CLOSED
                self._prepare_for_sending([f])
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise StreamClosedError(e.stream_id) from e
            else:
                raise
        else:
            self._prepare_for_sending(frames)
        return events


def _plain(headers) -> bool:
    """A list of (bytes, bytes) tuples (as stream.py makes them): h2 would send it unchanged."""
    if type(headers) is not list or not headers:
        return False
    for field in headers:
        if type(field) is not tuple or len(field) != 2 or type(field[0]) is not bytes or type(field[1]) is not bytes:
            return False
    return True


def _informational(headers) -> bool:
    """A 1xx response head (h2's ``is_informational_response``: ``:status`` comes first)."""
    for name, value in headers:
        if name == b":status":
            return value.startswith(b"1")
        if not name.startswith(b":"):
            return False
    return False

