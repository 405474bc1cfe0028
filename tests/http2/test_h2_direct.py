"""DirectConnection (server/http2/direct.py) writes the frames of a response itself and skips
h2's trace formatting: driven in lockstep with h2's own connection (the same frames received,
the same calls), it writes the same bytes, raises the same errors, and leaves every stream in
the same state with the same windows."""

import pytest

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.exceptions  # noqa: E402
import h2.settings  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from server.http2 import direct  # noqa: E402
from server.http2.direct import DirectConnection  # noqa: E402
from server.http2.malformed import StreamErrorsConnection  # noqa: E402

CONFIG = dict(client_side=False, header_encoding=None, validate_inbound_headers=False,
              normalize_inbound_headers=False, validate_outbound_headers=False, normalize_outbound_headers=False)
REQUEST = [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]
STREAMS = (1, 3, 5, 7)


def client_bytes(window: int) -> bytes:
    """A client's preface, settings (a small stream window), and four requests: 1 and 3
    ended, 5 and 7 still sending their bodies."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    for sid in STREAMS:
        client.send_headers(sid, REQUEST, end_stream=sid < 5)
    client.send_data(5, b"part")
    return client.data_to_send()


def pair(window: int = 100):
    """h2's own connection and ours, each having received the same bytes."""

    theirs = StreamErrorsConnection(config=h2.config.H2Configuration(**CONFIG))
    ours = DirectConnection(config=h2.config.H2Configuration(**CONFIG))
    data = client_bytes(window)
    for conn in (theirs, ours):
        conn.initiate_connection()
        conn.receive_data(data)
    assert theirs.data_to_send() == ours.data_to_send()
    return theirs, ours


def call(conn, op):
    name, *args = op
    try:
        getattr(conn, name)(*args)
    except h2.exceptions.H2Error as exc:
        return type(exc)
    return None


def stream_state(stream) -> dict:
    """Everything a stream holds: its attributes, its state machine's and its window's."""
    held = {k: v for k, v in vars(stream).items() if k not in ("state_machine", "_inbound_window_manager", "config")}
    return {**held, "machine": vars(stream.state_machine), "window": vars(stream._inbound_window_manager)}


def assert_same(theirs, ours) -> None:
    assert ours.data_to_send() == theirs.data_to_send()
    assert ours.outbound_flow_control_window == theirs.outbound_flow_control_window
    assert ours.state_machine.state == theirs.state_machine.state
    assert ours.streams.keys() == theirs.streams.keys()
    for sid, stream in theirs.streams.items():
        mine = ours.streams[sid]
        assert mine.state_machine.state == stream.state_machine.state, sid
        assert mine.state_machine.headers_sent == stream.state_machine.headers_sent
        assert mine.state_machine.trailers_sent == stream.state_machine.trailers_sent
        assert mine.outbound_flow_control_window == stream.outbound_flow_control_window
        assert mine.request_method == stream.request_method
        assert mine._expected_content_length == stream._expected_content_length
        assert mine._actual_content_length == stream._actual_content_length
        assert getattr(mine, "malformed", None) == getattr(stream, "malformed", None)
        assert stream_state(mine) == stream_state(stream)


def lockstep(ops, window: int = 100) -> list:
    theirs, ours = pair(window)
    errors = []
    for op in ops:
        expected = call(theirs, op)
        assert call(ours, op) is expected, op
        errors.append(expected)
        assert_same(theirs, ours)
    return errors


HEAD = [(b":status", b"200"), (b"content-type", b"text/plain")]


def test_a_response_is_h2s_bytes():
    errors = lockstep([("send_headers", 1, HEAD, False), ("send_data", 1, b"hello", False),
                       ("send_data", 1, b"", True), ("send_headers", 3, HEAD + [(b"content-length", b"0")], True)])
    assert errors == [None] * 4


@pytest.mark.parametrize("window, data", [(100, b""), (100, b"hello"), (100, b"x" * 100), (100, b"x" * 101),
                                          (100000, b"x" * 16384), (100000, b"x" * 16385)])
def test_a_whole_response_is_h2s_head_and_data_or_nothing(window, data):
    theirs, ours = pair(window)
    sent = ours.send_plain_response(ours.streams[1], HEAD, data)
    assert sent == (len(data) <= min(window, 16384))  # (the stream's window, a frame)
    if sent:
        theirs.send_headers(1, HEAD, end_stream=not data)
        if data:
            theirs.send_data(1, data, end_stream=True)
    assert_same(theirs, ours)


def test_informational_heads_trailers_and_a_long_head_in_continuations():
    big = [(b":status", b"200"), (b"x-big", b"v" * 40000)]  # (over two frames of 16 KiB)
    errors = lockstep([("send_headers", 1, [(b":status", b"103"), (b"link", b"</a>")], False),
                       ("send_headers", 1, big, False), ("send_data", 1, b"x", False),
                       ("send_headers", 1, [(b"x-trailer", b"1")], True), ("send_headers", 3, big, True)])
    assert errors == [None] * 5


def test_the_same_errors_as_h2():
    errors = lockstep([
        ("send_headers", 1, [(b":status", b"100")], True),  # END_STREAM on a 1xx
        ("send_data", 1, b"x", False),  # data before the head
        ("send_headers", 1, HEAD, False),
        ("send_data", 1, b"x" * 101, False),  # past the stream's window of 100
        ("send_headers", 1, [(b"x-trailer", b"1")], False),  # trailers without END_STREAM
        ("send_data", 9, b"x", False),  # a stream that never opened
        ("send_headers", 3, HEAD, True), ("send_data", 3, b"x", True),  # closed
    ])
    assert errors[0] is h2.exceptions.ProtocolError
    assert errors[3] is h2.exceptions.FlowControlError
    assert errors[4] is h2.exceptions.ProtocolError
    assert errors[5] is h2.exceptions.NoSuchStreamError
    assert errors[7] is h2.exceptions.StreamClosedError


def test_what_it_does_not_do_itself_goes_to_h2():
    """Padding, str fields, a memoryview: h2's own methods, the same bytes."""
    errors = lockstep([("send_headers", 1, [(":status", "200")], False),
                       ("send_data", 1, b"abc", False, 3), ("send_data", 1, memoryview(b"def"), True)])
    assert errors == [None] * 3


heads = st.sampled_from([HEAD, [(b":status", b"100")], [(b":status", b"204")], [(b"x-trailer", b"t")],
                         [(b":status", b"200"), (b"x-big", b"b" * 20000)]])
ops = st.one_of(
    st.tuples(st.just("send_headers"), st.sampled_from(STREAMS), heads, st.booleans()),
    st.tuples(st.just("send_data"), st.sampled_from(STREAMS), st.sampled_from([b"", b"x", b"y" * 60]), st.booleans()),
    st.tuples(st.just("reset_stream"), st.sampled_from(STREAMS)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=25))
def test_any_sequence_of_calls_in_lockstep(sequence):
    lockstep(sequence)


def test_received_frames_are_handled_as_h2_does_them():
    """A frame for a stream already reset (h2 answers RST_STREAM), then one for a stream both
    sides ended: the same events, bytes and errors."""
    theirs, ours = pair()

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, REQUEST, end_stream=False)
    client.data_to_send()
    client.send_data(1, b"late")
    late = client.data_to_send()
    for conn in (theirs, ours):
        conn.reset_stream(5)
    assert theirs.data_to_send() == ours.data_to_send()
    late_on_5 = late[:5] + (5).to_bytes(4, "big") + late[9:]
    assert received(theirs, late_on_5) == received(ours, late_on_5)
    assert_same(theirs, ours)
    for conn in (theirs, ours):
        conn.send_headers(1, HEAD, end_stream=True)
    assert_same(theirs, ours)
    late_on_1 = late[:5] + (1).to_bytes(4, "big") + late[9:]
    assert received(theirs, late_on_1) == received(ours, late_on_1)
    assert_same(theirs, ours)


def received(conn, data: bytes):
    try:
        return [type(e) for e in conn.receive_data(data)]
    except h2.exceptions.H2Error as exc:
        return type(exc)


# -- receiving ------------------------------------------------------------------------------------

BLOCK = b"\x82\x84\x86\x01\x01x"  # GET / http, :authority x (static table, nothing indexed)


def raw_frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


class Client:
    """Bytes a client sends: h2's own client for well-formed frames, raw ones for the rest."""

    def __init__(self):
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.opening = self.conn.data_to_send()  # (the preface and settings: read first, on their own)
        self.next_raw = 1001  # (raw streams far above the client's own)

    def act(self, action) -> bytes:
        conn, name = self.conn, action[0]
        try:
            if name == "request":
                sid = conn.get_next_available_stream_id()
                extra = {"big": [("x-big", "b" * 20000)], "length": [("content-length", "10")],
                         "bad length": [("content-length", "x")]}.get(action[2], [])
                conn.send_headers(sid, REQUEST + extra, end_stream=action[1])
            elif name in ("data", "trailers", "reset", "window", "priority"):
                open_ids = [sid for sid, s in conn.streams.items() if s.open]
                if not open_ids:
                    return b""
                sid = open_ids[action[1] % len(open_ids)]
                if name == "data":
                    conn.send_data(sid, b"d" * 10, end_stream=action[2])
                elif name == "trailers":
                    conn.send_headers(sid, [("x-t", "1")], end_stream=True)
                elif name == "reset":
                    conn.reset_stream(sid)
                elif name == "window":
                    conn.increment_flow_control_window(100, sid)
                else:
                    conn.prioritize(sid, weight=10)
            elif name == "ping":
                conn.ping(b"12345678")
            elif name == "settings":
                conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
            else:  # raw HEADERS: padded, with priority, on an even or a reused id, split in CONTINUATION
                name = name.removesuffix("-head")
                self.next_raw += 2
                sid = {"even": self.next_raw + 1, "reused": 1}.get(name, self.next_raw)
                flags = {"padded": 0x8 | 0x4, "priority": 0x20 | 0x4, "split": 0}.get(name, 0x4) | 0x1
                payload = {"padded": b"\x02" + BLOCK + b"\x00\x00", "priority": b"\x00\x00\x00\x00\x0f" + BLOCK,
                           "split": BLOCK[:3]}.get(name, BLOCK)
                data = raw_frame(0x1, flags, sid, payload)
                if name == "split":
                    data += raw_frame(0x9, 0x4, sid, BLOCK[3:])
                return conn.data_to_send() + data
        except h2.exceptions.H2Error:
            pass  # (the client's own state refuses it: nothing sent)
        return conn.data_to_send()


def received(conn, data: bytes):
    try:
        return [repr(e) for e in conn.receive_data(data)]
    except h2.exceptions.H2Error as exc:
        return type(exc)


def server(cls, max_streams: int):
    conn = cls(config=h2.config.H2Configuration(**CONFIG))
    conn.local_settings = h2.settings.Settings(client=False, initial_values={
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams})
    conn.initiate_connection()
    return conn


def receive_in_lockstep(client: Client, data: bytes, cuts, max_streams: int = 100) -> list:
    """The client's opening, then ``data`` cut into reads at ``cuts``, received by both."""
    theirs, ours = server(StreamErrorsConnection, max_streams), server(DirectConnection, max_streams)
    assert received(theirs, client.opening) == received(ours, client.opening)
    assert theirs.data_to_send() == ours.data_to_send()
    outcomes = []
    bounds = [0, *sorted(set(c % (len(data) + 1) for c in cuts)), len(data)]
    for start, end in zip(bounds, bounds[1:]):
        piece = data[start:end]
        outcome = received(theirs, piece)
        assert received(ours, piece) == outcome, (start, end)
        assert_same(theirs, ours)
        outcomes.append(outcome)
        if not isinstance(outcome, list):
            break
    return outcomes


def test_requests_opening_streams_are_received_as_h2_receives_them():
    client = Client()
    data = b"".join(client.act(a) for a in [("request", True, ""), ("request", False, "length"),
                                              ("data", 1, True), ("request", True, "big"), ("ping",)])
    outcomes = receive_in_lockstep(client, data, [])
    assert sum(o.count("RequestReceived") for o in map(str, outcomes)) == 3


@pytest.mark.parametrize("kind", ["padded-head", "priority-head", "split-head", "even-head", "reused-head"])
def test_heads_it_does_not_read_itself_are_received_as_h2_receives_them(kind):
    client = Client()
    data = b"".join(client.act(a) for a in [("request", True, ""), (kind,), ("request", True, "")])
    receive_in_lockstep(client, data, [])


def test_streams_are_made_by_this_modules_own_init_on_this_h2():
    """The lockstep tests cover the fast way of making a stream only if it is the one taken."""
    assert direct._OWN_INIT
    stream = direct.DirectStream(1, None, 10, 20)
    assert type(stream.state_machine) is direct.DirectStreamMachine


def test_with_another_h2s_stream_attributes_streams_are_made_by_h2s_init(monkeypatch):
    monkeypatch.setattr(direct, "_OWN_INIT", False)
    test_requests_opening_streams_are_received_as_h2_receives_them()
    stream = direct.DirectStream(1, None, 10, 20)
    assert type(stream.state_machine) is direct.DirectStreamMachine


def test_settings_are_read_as_h2_reads_them():
    codes = h2.settings.SettingCodes
    settings = h2.settings.Settings(client=False, initial_values={codes.MAX_CONCURRENT_STREAMS: 7})
    settings[codes.INITIAL_WINDOW_SIZE] = 100  # (pending until acknowledged: still the default)
    settings[codes.MAX_HEADER_LIST_SIZE] = 100  # (not set before: pending, no current value)
    for code in (codes.MAX_CONCURRENT_STREAMS, codes.INITIAL_WINDOW_SIZE, codes.MAX_HEADER_LIST_SIZE,
                 codes.ENABLE_PUSH):
        assert direct.setting(settings, code, -1) == settings.get(code, -1), code
    settings.acknowledge()
    assert direct.setting(settings, codes.INITIAL_WINDOW_SIZE) == settings.initial_window_size == 100
    assert direct.setting(settings, codes.MAX_HEADER_LIST_SIZE, -1) == 100


def test_too_many_streams_is_the_same_error():
    client = Client()
    data = b"".join(client.act(("request", False, "")) for _ in range(4))
    assert receive_in_lockstep(client, data, [], max_streams=3)[-1] is h2.exceptions.TooManyStreamsError


actions = st.one_of(
    st.tuples(st.just("request"), st.booleans(), st.sampled_from(["", "", "big", "length", "bad length"])),
    st.tuples(st.sampled_from(["data"]), st.integers(0, 5), st.booleans()),
    st.tuples(st.sampled_from(["trailers", "reset", "window", "priority"]), st.integers(0, 5)),
    st.tuples(st.sampled_from(["ping", "settings", "padded-head", "priority-head", "split-head", "even-head",
                               "reused-head"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(actions, max_size=20), st.lists(st.integers(0, 100000), max_size=6), st.sampled_from([3, 100]))
def test_any_bytes_a_client_sends_are_received_in_lockstep(sequence, cuts, max_streams):
    client = Client()
    data = b"".join(client.act(a) for a in sequence)
    receive_in_lockstep(client, data, cuts, max_streams)


names = st.sampled_from([b":status", b":method", b":path", b":", b"", b"status", b"x-a"]) | st.binary(max_size=4)
values = st.sampled_from([b"100", b"1", b"200", b"", b"101", b"x"]) | st.binary(max_size=3)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(names, values), max_size=6))
def test_a_head_is_informational_as_h2_decides(fields):
    from h2.utilities import is_informational_response
    assert direct._informational(fields) == is_informational_response(fields)


def test_the_stream_table_holds_h2s_transitions_and_nothing_else():
    import h2.stream
    for state in h2.stream.StreamState:
        for input_ in h2.stream.StreamInputs:
            assert direct._STREAM_TABLE[state._value_][input_._value_] == \
                h2.stream._transitions.get((state, input_)), (state, input_)


def test_without_the_table_every_input_takes_h2s_way(monkeypatch):
    monkeypatch.setattr(direct, "_STREAM_TABLE", [])
    test_requests_opening_streams_are_received_as_h2_receives_them()
    lockstep([("send_headers", 1, HEAD, False), ("send_data", 1, b"x", True), ("send_data", 1, b"x", True)])
