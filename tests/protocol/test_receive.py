"""The connection's ``data_received``, compiled (_receive.c) as a method of its class; its
reference is ``server.data_received_py``, the Python method.

``Reference`` below has the Python method. Each case sends a ``Compiled`` and a ``Reference``
connection the same bytes, piece by piece, on real socket pairs under uvloop: the two must leave
the same state behind after each piece (every slot of the connection, its parser's and its
timer's, what its app was given) and the same bytes on the wire. A profile of the Python calls
tells which way each piece went: the compiled one runs the Python method only for what the C
hands back.
"""

import asyncio
import fcntl
import struct
import termios

import pytest
import uvloop

from helpers import PythonCalls, connected, read_to_end, undated, wait_for
from server.protocol import server as server_module
from server.protocol.forwarded import AllowList, ProxyPolicy
from server.protocol.heads import STATUS_LINE
from server.protocol.server import NULL_SINK, ServerConfig, ServerHttpProtocol, data_received_py
from server.protocol.timers import ConnectionTimer

pytestmark = pytest.mark.skipif(ServerHttpProtocol.data_received is data_received_py,
                                reason="the compiled helpers are not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)")
IGNORED = {"loop", "config", "log", "_owner", "transport", "app", "pass_end", "_parser", "_timer", "_body_rate",
           "_response_rate", "peername", "sockname", "socket_fd", "_started", "_direct"}
GET = b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n"


class Sink:
    def __init__(self):
        self.pieces = []

    def feed_data(self, data, end_of_chunk=False):
        self.pieces.append(bytes(data))

    def feed_eof(self, trailers=None):
        self.pieces.append("end")

    def set_exception(self, exc):
        self.pieces.append(repr(exc))
        return False


class Compiled(ServerHttpProtocol):
    """A connection its own app: keeps each request's path and body; answers a request whole
    once its body has come."""

    def __init__(self, config):
        super().__init__(config)
        self.requests = []

    def on_request(self, head):
        sink = Sink()
        self.requests.append((head.path, sink.pieces))
        return sink

    def answer(self):
        response, data = self.response_head(self._head, "200 OK", STATUS_LINE, (), 2)
        self.send_response(response, data, b"ok", True, 2)


class Reference(Compiled):
    data_received = data_received_py


def state(proto) -> dict:
    slots = {name: getattr(proto, name, "<unset>") for name in ServerHttpProtocol.__slots__ if name not in IGNORED}
    for name in ("_head", "_response", "exchange", "idle_until", "request_forwarded", "_sink", "_upgraded"):
        slots[name] = None if slots[name] is None else type(slots[name]).__name__
    slots["_sink"] = "NULL_SINK" if proto._sink is NULL_SINK else slots["_sink"]
    parser = proto._parser
    slots["parser"] = (parser.state, bytes(parser.buffer))
    timer = proto._timer
    slots["timer"] = (timer.phase, timer._seconds) if type(timer) is ConnectionTimer else (type(timer).__name__,
                                                                                           timer.phase)
    slots["transport"] = None if proto.transport is None else (proto.transport.is_closing(),
                                                               proto.transport.is_reading())
    slots["requests"] = [(path, list(pieces)) for path, pieces in proto.requests]
    return slots


def unread(fd: int) -> int:
    """Bytes waiting in the socket ``fd``'s receive queue."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def run_case(pieces, config_kwargs=None, answer=True, prepare=None):
    """Each of ``pieces`` (bytes) sent to a Compiled and a Reference connection, each after the
    last was taken: the states after each, the bytes the client got, and the Python calls of
    the reference each made. ``prepare(proto)``: done first."""

    async def one(cls):
        proto = cls(ServerConfig(keepalive=5, **(config_kwargs or {})))
        client = await connected(proto)
        loop = asyncio.get_running_loop()
        steps = []
        if prepare is not None:
            prepare(proto)
        with PythonCalls(data_received_py) as calls:
            ours = proto.transport.get_extra_info("socket").fileno()
            for piece in pieces:
                await loop.sock_sendall(client, piece)
                await wait_for(lambda: proto.transport is None or unread(ours) == 0)  # (read: data_received ran)
                steps.append(state(proto))
                for _ in range(len(piece)):  # (each request whole by now, a pipelined one after the last)
                    if not (answer and proto._head is not None and proto._parser.done and proto.transport is not None):
                        break
                    proto.answer()
        if proto.transport is not None:
            proto.transport.close()
        got = await read_to_end(client)
        client.close()
        return steps, undated(got), calls.count

    return uvloop.run(one(Compiled)), uvloop.run(one(Reference))


def assert_same(pieces, config_kwargs=None, python_calls=0, **kwargs):
    compiled, reference = run_case(pieces, config_kwargs, **kwargs)
    assert compiled[:2] == reference[:2]
    assert compiled[2] == python_calls and reference[2] >= len(pieces)
    return compiled


def test_whole_heads_go_through_the_c_alone():
    steps, got, _ = assert_same([GET % b"a", GET % b"b", GET % b"c"])
    assert [path for path, _ in steps[-1]["requests"]] == ["/a", "/b", "/c"] and got.count(b"200 OK") == 3
    assert steps[-1]["_received_any"] is True and steps[-1]["timer"] == (None, 5)  # (the last in flight)


def test_a_head_with_its_whole_body_goes_through_the_c():
    steps, got, _ = assert_same([b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"])
    assert steps[0]["requests"] == [("/p", [])] and got.count(b"200 OK") == 1


def test_a_head_in_two_pieces_goes_to_the_reference_and_its_timer_starts():
    """The first piece is not a whole head: the reference feeds it (and times the head)."""
    steps, got, _ = assert_same([b"GET /split HTTP/1.1\r\nHo", b"st: t\r\n\r\n"], python_calls=2)
    assert steps[0]["timer"][0] == "head"
    assert steps[1]["requests"] == [("/split", [])] and got.count(b"200 OK") == 1


def test_a_body_after_its_head_is_timed_by_the_reference():
    """The head comes alone and its body is awaited: the body's bytes touch its timer (the
    reference's), as a body being timed takes the reference's way."""
    head = b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n"
    steps, got, _ = assert_same([head, b"ab", b"cd"], python_calls=2)
    assert steps[0]["timer"][0] == "body" and steps[-1]["requests"] == [("/b", [b"ab", b"cd", "end"])]


def test_a_bad_head_in_one_piece_is_rejected_as_the_reference_rejects_it():
    """whole_head raises the request's error: the connection's _reject answers 400 and closes;
    what comes after is not read as a request (the reference, for a failed connection)."""
    bad = b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n"
    compiled, reference = run_case([bad], answer=False)
    assert compiled[:2] == reference[:2] and compiled[1].startswith(b"HTTP/1.1 400 ")
    assert compiled[0][0]["_input_failed"] is True and compiled[2] == 0


def test_two_heads_in_one_piece_go_to_the_reference():
    steps, got, _ = assert_same([GET % b"one" + GET % b"two"], python_calls=1)
    assert got.count(b"200 OK") == 2


def test_a_connection_expecting_a_proxy_header_reads_it_by_the_reference():
    proxy = ProxyPolicy(AllowList("*"), proxy_protocol="v1", proxy_allow=AllowList("*"))
    header = b"PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n"
    steps, got, _ = assert_same([header + GET % b"p", GET % b"q"], {"proxy": proxy}, python_calls=1)
    assert got.count(b"200 OK") == 2 and steps[-1]["_proxy_buffer"] is None  # (read: the next piece is the C's)


def test_the_method_is_the_classs_and_its_subclasses_own_methods_are_theirs():
    assert type(ServerHttpProtocol.__dict__["data_received"]).__name__ == "method_descriptor"
    assert Reference.data_received is data_received_py
    assert server_module.ServerHttpProtocol.data_received.__name__ == "data_received"


class Receiver:
    """What an upgraded connection hands its bytes to."""

    def __init__(self):
        self.received = []

    def data_received(self, data):
        self.received.append(data)


@pytest.mark.parametrize("how", ["upgraded", "failed", "lingering"])
def test_a_connection_not_reading_requests_leaves_its_bytes_to_the_reference(how):
    """Upgraded: they are its receiver's. Failed (a request was rejected): ignored. Lingering
    (closing, its input drained): discarded."""
    receivers = []

    def prepare(proto):
        if how == "upgraded":
            receivers.append(Receiver())
            proto._upgraded = receivers[-1]
        elif how == "failed":
            proto._input_failed = True
        else:
            proto._linger_left = 1000

    steps, _, _ = assert_same([GET % b"x"], python_calls=1, prepare=prepare)
    assert steps[0]["requests"] == []
    if how == "upgraded":
        assert receivers[0].received == receivers[1].received == [GET % b"x"]
    if how == "lingering":
        assert steps[0]["_linger_left"] == 1000 - len(GET % b"x")
