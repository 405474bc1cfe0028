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
- ``receive_data`` reads the HEADERS frames that open a stream (a whole block, no padding
  or priority, the next client stream id) itself, while h2's frame buffer holds nothing:
  no hyperframe object, the same steps as h2's ``_receive_headers_frame`` from the decoding
  on, and its stream's ``receive_headers`` without the header checks that are off. Any
  other frame, and all that follows it in the read, goes to h2's own ``receive_data``.
- ``_receive_frame`` is h2's, without formatting the frame for the trace log.
- The connection's and its streams' state machines are h2's, with the transition looked up
  by the identity of the state and the input (the connection's) or in a table by their
  values (a stream's): h2's key, a pair of enum members, hashes each member in Python
  (``Enum.__hash__``), eleven times a request. The connection's machine is
  not asked at all for the inputs that leave an open server connection as it is (h2's own
  table says which at import). A stream is made with its state machine once (h2's
  ``__init__`` makes one that would be replaced) and reads settings without h2's
  ``Mapping`` layers (``setting``).

tests/http2/test_h2_direct.py drives this class and h2's own in lockstep (the same calls,
the same bytes received, split anywhere) and compares every event, byte written, error and
every stream's state.
"""

import struct

import h2.connection
import h2.stream
from h2.connection import AllowedStreamIDs, ConnectionInputs, ConnectionState, _decode_headers
from h2.errors import ErrorCodes
from h2.events import TrailersReceived
from h2.exceptions import (FlowControlError, FrameTooLargeError, ProtocolError, StreamClosedError,
                           StreamIDTooLowError, TooManyStreamsError)
from h2.stream import StreamInputs
from h2.settings import SettingCodes
from h2.windows import WindowManager
from hyperframe.frame import RstStreamFrame

from .malformed import LenientStream, StreamErrorsConnection

_FRAME_HEADER = struct.Struct(">HBBBL")  # (length >> 8, length & 0xFF, type, flags, stream id)
_HEADER = _FRAME_HEADER.pack
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9
_END_STREAM, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x4, 0x8, 0x20


_CONNECTION_TRANSITIONS = {(id(state), id(input_)): step
                           for (state, input_), step in h2.connection.H2ConnectionStateMachine._transitions.items()}


def _steady(state, *inputs) -> bool:
    """Each of ``inputs`` leaves a connection in ``state`` as it is, with no side effect."""
    transitions = h2.connection.H2ConnectionStateMachine._transitions
    return all(transitions.get((state, input_)) == (None, state) for input_ in inputs)


# A connection in this state needs no step for receiving a head and sending heads and data
# (anything else if h2's table ever says otherwise: then every input takes its step).
_STEADY = (ConnectionState.SERVER_OPEN if _steady(ConnectionState.SERVER_OPEN, ConnectionInputs.RECV_HEADERS,
                                                   ConnectionInputs.SEND_HEADERS, ConnectionInputs.SEND_DATA)
           else object())


def setting(settings, code, default=None):
    """``settings.get(code, default)`` (a current value) without h2's ``Mapping`` layers."""
    try:
        value = settings._settings[code][0]
    except AttributeError:  # (an h2 that keeps them otherwise)
        return settings.get(code, default)
    except KeyError:
        return default
    return default if value is None else value


def _stream_table() -> list:
    """h2's stream transitions as rows by state and columns by input, each indexed by the
    member's value (``_value_``, a plain attribute: ``value`` is a descriptor in Python)."""
    states, inputs = list(h2.stream.StreamState), list(h2.stream.StreamInputs)
    if [s._value_ for s in states] != list(range(len(states))) or \
            [i._value_ for i in inputs] != list(range(len(inputs))):
        return []  # (an h2 whose values are not 0, 1, 2...: every input takes h2's own way)
    table = [[None] * len(inputs) for _ in states]
    for (state, input_), step in h2.stream._transitions.items():
        table[state._value_][input_._value_] = step
    return table


_STREAM_TABLE = _stream_table()


class DirectStreamMachine(h2.stream.H2StreamStateMachine):
    """h2's stream state machine, its transitions in a table by the values of the state and
    the input (the same steps)."""

    def process_input(self, input_):
        try:
            step = _STREAM_TABLE[self.state._value_][input_._value_] if type(input_) is StreamInputs else None
        except (IndexError, AttributeError):
            step = None
        if step is None:
            return super().process_input(input_)  # (h2's error, as h2 raises it)
        func, target_state = step
        previous_state = self.state
        self.state = target_state
        if func is not None:
            try:
                return func(self, previous_state)
            except ProtocolError:
                self.state = h2.stream.StreamState.CLOSED
                raise
            except AssertionError as err:
                self.state = h2.stream.StreamState.CLOSED
                raise ProtocolError(err) from err
        return []


class DirectConnectionMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, its transitions keyed by identity (the same steps)."""

    def process_input(self, input_):
        try:
            func, target_state = _CONNECTION_TRANSITIONS[(id(self.state), id(input_))]
        except KeyError:
            return super().process_input(input_)
        self.state = target_state
        if func is not None:
            return func()
        return []


class DirectStream(LenientStream):
    """h2's stream (as malformed.py's), receiving a head without the checks that are off, and
    with the state machine of this module."""

    def __init__(self, stream_id: int, config, inbound_window_size: int, outbound_window_size: int) -> None:
        if not _OWN_INIT:  # (an h2 whose stream has other attributes than these: its own __init__)
            super().__init__(stream_id, config, inbound_window_size, outbound_window_size)
            self.state_machine = DirectStreamMachine(stream_id)
            return
        # h2's __init__, in its order, with this module's state machine made once
        self.state_machine = DirectStreamMachine(stream_id)
        self.stream_id = stream_id
        self.max_outbound_frame_size = None
        self.request_method = None
        self.outbound_flow_control_window = outbound_window_size
        self._inbound_window_manager = WindowManager(inbound_window_size)
        self._expected_content_length = None
        self._actual_content_length = 0
        self._authority = None
        self.config = config

    def receive_headers(self, headers, end_stream: bool, header_encoding):
        config = self.config
        if config.normalize_inbound_headers or config.validate_inbound_headers or isinstance(header_encoding, str):
            return super().receive_headers(headers, end_stream, header_encoding)
        if _informational(headers):
            if end_stream:
                raise ProtocolError("Cannot set END_STREAM on informational responses")
            input_ = StreamInputs.RECV_INFORMATIONAL_HEADERS
        else:
            input_ = StreamInputs.RECV_HEADERS
        machine = self.state_machine
        events = machine.process_input(input_)
        headers_event = events[0]
        if end_stream:
            ended = machine.process_input(StreamInputs.RECV_END_STREAM)
            headers_event.stream_ended = ended[0]
            events += ended
        self._initialize_content_length(headers)
        if isinstance(headers_event, TrailersReceived) and not end_stream:
            raise ProtocolError("Trailers must have END_STREAM set")
        # (h2 copies the fields here; a decoded list is the decoder's new one already)
        headers_event.headers = headers if type(headers) is list else list(headers)
        return [], events


_OWN_INIT = sorted(vars(h2.stream.H2Stream(1, None, 0, 0))) == [
    "_actual_content_length", "_authority", "_expected_content_length", "_inbound_window_manager", "config",
    "max_outbound_frame_size", "outbound_flow_control_window", "request_method", "state_machine", "stream_id"]


def frame_header(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return _HEADER(length >> 8, length & 0xFF, kind, flags, stream_id)


class DirectConnection(StreamErrorsConnection):
    def __init__(self, config=None) -> None:
        super().__init__(config=config)
        machine = DirectConnectionMachine()
        machine.state = self.state_machine.state
        self.state_machine = machine

    def _begin_new_stream(self, stream_id, allowed_ids):
        """h2's, making a ``DirectStream`` (not an h2 stream whose class is then changed: an
        object whose class changes loses the compact attribute storage of its first class)."""
        outbound = self._stream_id_is_outbound(stream_id)
        highest_stream_id = self.highest_outbound_stream_id if outbound else self.highest_inbound_stream_id
        if stream_id <= highest_stream_id:
            raise StreamIDTooLowError(stream_id, highest_stream_id)
        if (stream_id % 2) != int(allowed_ids):
            raise ProtocolError("Invalid stream ID for peer.")
        stream = DirectStream(stream_id, config=self.config,
                              inbound_window_size=setting(self.local_settings, SettingCodes.INITIAL_WINDOW_SIZE),
                              outbound_window_size=setting(self.remote_settings, SettingCodes.INITIAL_WINDOW_SIZE))
        stream.max_outbound_frame_size = self.max_outbound_frame_size
        self.streams[stream_id] = stream
        if outbound:
            self.highest_outbound_stream_id = stream_id
        else:
            self.highest_inbound_stream_id = stream_id
        return stream

    def receive_data(self, data) -> list:
        buffer = self.incoming_buffer
        if type(data) is not bytes or buffer._data or buffer._preamble_len or buffer._headers_buffer \
                or self.config.client_side:
            return super().receive_data(data)
        events: list = []
        pos, size = 0, len(data)
        limit = self.max_inbound_frame_size
        try:
            while size - pos >= 9:
                high, low, kind, flags, sid = _FRAME_HEADER.unpack_from(data, pos)
                length = high << 8 | low
                sid &= 0x7FFFFFFF
                if (kind != _HEADERS or flags & (_PADDED | _PRIORITY) or not flags & _END_HEADERS
                        or length > limit or size - pos - 9 < length or not sid & 1
                        or sid <= self.highest_inbound_stream_id):
                    break
                start = pos + 9
                pos = start + length
                events += self._stream_opened(sid, data[start:pos], bool(flags & _END_STREAM))
        except ProtocolError as e:
            self._terminate_connection(e.error_code)
            raise
        if pos < size:
            events += super().receive_data(data[pos:] if pos else data)
        return events

    def _stream_opened(self, stream_id: int, block: bytes, end_stream: bool) -> list:
        """h2's ``_receive_headers_frame`` (and ``_receive_frame``) for a whole header block,
        without priority, opening client stream ``stream_id``."""
        max_open_streams = setting(self.local_settings, SettingCodes.MAX_CONCURRENT_STREAMS, 2**32 + 1)
        value = self.open_inbound_below(max_open_streams)
        if value + 1 > max_open_streams:
            raise TooManyStreamsError(f"Max inbound streams is {max_open_streams}, {value} open")
        headers = _decode_headers(self.decoder, block)
        machine = self.state_machine
        events = [] if machine.state is _STEADY else machine.process_input(ConnectionInputs.RECV_HEADERS)
        stream = self._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
        frames, stream_events = stream.receive_headers(headers, end_stream, self.config.header_encoding)
        self._prepare_for_sending(frames)
        return events + stream_events

    def send_headers(self, stream_id, headers, end_stream=False, priority_weight=None, priority_depends_on=None,
                     priority_exclusive=None) -> None:
        stream = self.streams.get(stream_id)
        config = self.config
        if (stream is None or priority_weight is not None or priority_depends_on is not None
                or priority_exclusive is not None or config.normalize_outbound_headers
                or config.validate_outbound_headers or not _plain(headers)):
            return super().send_headers(stream_id, headers, end_stream, priority_weight, priority_depends_on,
                                        priority_exclusive)
        self.send_plain_headers(stream, headers, end_stream)

    def send_plain_headers(self, stream, headers: list, end_stream: bool) -> None:
        """``send_headers`` on an h2 stream of this connection, with ``headers`` a non-empty list of
        (bytes, bytes) pairs (as stream.py makes a response head) and h2's outbound checks off."""
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
        self._write_block(stream.stream_id, block, stream.max_outbound_frame_size, _END_STREAM if end_stream else 0)

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
        self._send_data_on(stream, data, end_stream)

    def _send_data_on(self, stream, data: bytes, end_stream: bool) -> None:
        """``send_data`` once its checks have passed."""
        if self.state_machine.state is not _STEADY:
            self.state_machine.process_input(ConnectionInputs.SEND_DATA)
        machine = stream.state_machine
        machine.process_input(StreamInputs.SEND_DATA)
        if end_stream:
            machine.process_input(StreamInputs.SEND_END_STREAM)
        size = len(data)
        stream.outbound_flow_control_window -= size
        self.outbound_flow_control_window -= size
        out = self._data_to_send
        out += frame_header(size, _DATA, _END_STREAM if end_stream else 0, stream.stream_id)
        out += data

    def send_plain_response(self, stream, headers: list, data: bytes) -> bool:
        """A whole response on an h2 stream of this connection: ``send_plain_headers``, then
        ``data`` with END_STREAM (or the head ends the stream, with no data). False, with
        nothing done, if ``data`` is more than the windows or a frame take."""
        size = len(data)
        if size > self.outbound_flow_control_window or size > stream.outbound_flow_control_window \
                or size > self.max_outbound_frame_size:
            return False
        self.send_plain_headers(stream, headers, not size)
        if size:
            self._send_data_on(stream, data, True)
        return True

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
    for field in headers:
        name = field[0]
        if not name or name[0] != 0x3A:  # (not a pseudo-field: b":")
            return False
        if name == b":status":
            return field[1][:1] == b"1"
    return False
