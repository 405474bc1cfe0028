"""The end of a connection its answer closes, compiled (protocol/_accepted.c): ``_write_last`` (the
last bytes, with the FIN), ``close``, ``AcceptedTransport.close`` and, on the loop's next turn,
the loss (``AcceptedTransport._lost`` and ``connection_lost``).

Their reference is those methods, which run for classes that replace them: ``Reference`` and
``ReferenceTransport`` below do, so the C declines them. Each case serves a ``Compiled`` and a
``Reference`` connection on real loopback TCP sockets, or puts the two in the same state and
calls the compiled and the Python way, and the two must leave the same bytes on the wire and
the same state behind. A profiler tells which Python methods ran: none of those for the
compiled way where the C takes the case, all of them for the reference.
"""

import asyncio
import os
import select
import socket
import struct
import sys

import pytest
import uvloop

from helpers import ConnectionOwner, descriptor_open, read_until_eof, tcp_ends, undated, wait_for
from server.protocol import server as server_module
from server.protocol.heads import STATUS_LINE
from server.protocol.response import SEPARATE_BODY
from server.protocol.seam import NO_APP
from server.protocol.server import ServerConfig, ServerHttpProtocol
from server.protocol.timers import GONE_TIMER, NO_TIMER
from server.workers.accepted import AcceptedTransport

answer_whole = server_module.answer_whole
accepted_lost = getattr(sys.modules["server.protocol._chead"], "accepted_lost", None) if answer_whole else None
pytestmark = pytest.mark.skipif(answer_whole is None, reason="the compiled helpers are not in use "
                                                             "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
CLOSING = b"GET /%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
# (is_closing: also asked by connection_made, of every transport)
STEP_OF = {"ConnectionEnding.close": "close", "WriteCoalescing._write_last": "_write_last",
           "AcceptedTransport._close_socket": "_close_socket", "AcceptedTransport._lost": "_lost",
           "ServerHttpProtocol.connection_lost": "connection_lost",
           "AcceptedTransport.get_write_buffer_size": "get_write_buffer_size"}
STEPS = set(STEP_OF.values())


class Compiled(ServerHttpProtocol):
    """A connection its own app: ``/now...`` is answered as its request comes, with a body of
    the size its path says (``/now-70000``); the test answers the others. It reads nothing while
    a request runs (as a WSGI connection): a request that closes leaves it on its socket."""

    reads_while_running = False

    def __init__(self, config, owner):
        super().__init__(config, owner=owner)
        self.heads = []
        self.disconnected = False

    def on_disconnect(self):
        self.disconnected = True

    def on_request(self, head):
        self.heads.append(head)
        if head.path.startswith("/now"):
            self.answer(b"x" * int(head.path.partition("-")[2] or 3))

    def answer(self, body: bytes):
        response, data = self.response_head(self.heads[-1], "200 OK", STATUS_LINE, (), len(body))
        answer_whole(self, response, data, body, len(body))


class Reference(Compiled):
    def close(self):
        super().close()

    def connection_lost(self, exc):
        super().connection_lost(exc)


class ReferenceTransport(AcceptedTransport):
    __slots__ = ()

    def close(self):
        super().close()


class Steps:
    """The Python methods of STEP_OF that run meanwhile (a profiler's calls), by their short names."""

    def __enter__(self):
        self.ran = set()
        sys.setprofile(lambda frame, event, arg: event == "call" and self._saw(frame.f_code))
        return self

    def _saw(self, code):
        step = STEP_OF.get(code.co_qualname)
        if step is not None:
            self.ran.add(step)

    def __exit__(self, *exc):
        sys.setprofile(None)


def never_handed(sock, factory, failed):
    raise AssertionError("handed to the loop")


def handing_over(loop):
    def hand(sock, factory, failed):
        loop.create_task(loop.connect_accepted_socket(factory, sock))
    return hand


def state(proto, transport) -> dict:
    """What the connection and its transport hold after the end."""
    timer = proto._timer
    return {"transport": proto.transport is not None,
            "timer": timer if timer in (NO_TIMER, GONE_TIMER) else type(timer).__name__,
            "armed": getattr(timer, "_handle", None) is not None, "disconnected": proto.disconnected,
            "first_wait": proto in proto.config.first_waits.waiting, "lease": proto._kept_lease is not None,
            "drain_waiter": proto._drain_waiter is not None, "rates": (proto._body_rate._handle is not None,
                                                                       proto._response_rate._handle is not None),
            "app": proto.app is NO_APP, "head": proto._head, "corked": proto._corked, "exchange": proto.exchange,
            "owner": list(proto._owner.calls), "lingering": proto._linger_left, "fd": transport._fd,
            "closing": transport._closing, "protocol": transport._protocol is not None, "pending": transport._pending,
            "loop_transport": transport._loop_transport is not None}


def fill_all(fd: int) -> None:
    """(the socket takes nothing more: an answer waits for the loop's transport)"""
    while fill(fd):
        pass


def fill(fd: int) -> int:
    """Bytes written on ``fd`` ahead of an answer: how many (0 once the socket takes no more)."""
    try:
        return os.write(fd, b"-" * 65536)
    except BlockingIOError:
        return 0


def served(loop, kind, transport_kind, request: bytes, hand=None, ends=tcp_ends, tcp_keepalive=False, before=None):
    """``(proto, transport, client)``: a ``kind`` connection served on its accepted socket with
    ``request`` read at accept, as the listener serves one (``hand``: how it is handed to the
    loop; ``before(fd)``: done on the socket first)."""
    server, client = ends()
    proto = kind(ServerConfig(keepalive=5, tcp_keepalive=tcp_keepalive), ConnectionOwner())
    proto.early_data = request
    proto.peername, proto.sockname = client.getsockname(), server.getsockname()
    proto.socket_fd = fd = server.detach()
    if before is not None:
        before(fd)
    transport = transport_kind(loop, fd, proto, proto.peername, proto.sockname,
                               handing_over(loop) if hand is None else hand, None, True)
    return proto, transport, client


def serve(kind, transport_kind, request: bytes, hand=never_handed, socket_fd=True, tcp_keepalive=False, full=False):
    """A ``kind`` connection served on its accepted socket with ``request`` read at accept, as the
    listener serves one: its state when it is lost, what the client got, and the steps that ran."""

    async def main():
        loop = asyncio.get_running_loop()
        proto, transport, client = served(loop, kind, transport_kind, request, hand if hand is never_handed else None,
                                          tcp_keepalive=tcp_keepalive, before=fill_all if full else None)
        fd = proto.socket_fd
        if not socket_fd:
            proto.socket_fd = None
        with Steps() as steps, client:
            transport.serve(proto.connection_made, transport)
            data, ended = await loop.run_in_executor(None, read_until_eof, client)
            received = undated(data), ended
            await wait_for(lambda: proto._owner.calls[-1:] == ["closed"])
            end = state(proto, transport)
            end["descriptor open"] = descriptor_open(fd)  # (no descriptor was made meanwhile)
        return end, received, steps.ran

    return uvloop.run(main())


def assert_same(request, ran=STEPS, **kwargs):
    compiled = serve(Compiled, AcceptedTransport, request, **kwargs)
    reference = serve(Reference, ReferenceTransport, request, **kwargs)
    assert compiled[:2] == reference[:2]
    assert not compiled[2] & ran and reference[2] >= ran - {"get_write_buffer_size"}
    return compiled


@pytest.mark.parametrize("size", [0, 3, 4000])
def test_an_answer_that_closes_goes_with_the_fin_and_the_connection_ends_as_close_ends_it(size):
    end, (data, ended), _ = assert_same(CLOSING % b"now-%d" % size)
    assert ended and data.endswith(b"\r\n\r\n" + b"x" * size) and data.count(b"HTTP/1.1 200 OK") == 1
    assert end == {"armed": False, "disconnected": False, "first_wait": False, "lease": False, "drain_waiter": False,
                   "rates": (False, False), "transport": False, "timer": GONE_TIMER, "app": True, "head": None,
                   "corked": None, "exchange": None, "owner": ["opened", "done", "closed"], "lingering": 0, "fd": -1,
                   "closing": True, "protocol": False, "pending": None, "loop_transport": False,
                   "descriptor open": False}


def test_a_transport_that_made_its_socket_object_closes_it_as_close_socket_does():
    """``tcp_keepalive`` set on the connection makes the socket object: its close is the
    reference's (the descriptor is the object's)."""
    end, (data, ended), steps = assert_same(CLOSING % b"now-5", ran={"_write_last"}, tcp_keepalive=True)
    assert ended and data.endswith(b"x" * 5) and end["fd"] == -1 and "_close_socket" in steps


@pytest.mark.parametrize("holds", ["loop's", "accepted"])
def test_an_answer_on_a_connection_the_loop_took_closes_the_loops_transport(holds):
    """A connection kept alive is handed to the loop's transport: the close is that transport's,
    also through the accepted one (which then passes every call on), if the connection still
    holds that."""
    kept, closing = b"GET /now-2 HTTP/1.1\r\nHost: t\r\n\r\n", CLOSING % b"now-4"

    def run(kind, transport_kind):
        async def main():
            loop = asyncio.get_running_loop()
            proto, transport, client = served(loop, kind, transport_kind, kept)
            transport.serve(proto.connection_made, transport)
            await wait_for(lambda: transport._loop_transport is not None)
            if holds == "accepted":
                proto.transport = transport
            with Steps() as steps, client:
                await loop.sock_sendall(client, closing)
                data, ended = await loop.run_in_executor(None, read_until_eof, client)
                received = undated(data), ended
                await wait_for(lambda: proto._owner.calls[-1:] == ["closed"])
            return state(proto, transport), received, steps.ran

        return uvloop.run(main())

    compiled, reference = run(Compiled, AcceptedTransport), run(Reference, ReferenceTransport)
    assert compiled[:2] == reference[:2] and compiled[1] == (reference[1][0], True)
    assert compiled[0]["loop_transport"] and compiled[1][0].endswith(b"xxxx")
    assert "close" not in compiled[2] and "close" in reference[2]


def waiting_for_the_loop(proto, transport, client, closed=False):
    """Bytes wait for the loop's transport (the socket was full), and the client has read
    everything the socket took since, without the loop turning: the socket takes bytes again,
    and they must wait behind those. ``closed``: none wait, but the transport was closed while
    the loop's is made; nothing goes after that."""
    fd, taken = transport._fd, 0
    while written := fill(fd):
        taken += written
    if closed:
        transport.hand_to_loop()
        transport.close()
        assert transport._pending == [] and transport.is_closing()
    else:
        transport.write(b"early ")
        assert transport._pending == [b"early "]
    client.settimeout(5)
    while taken:
        taken -= len(client.recv(taken))


@pytest.mark.parametrize("closed", [False, True], ids=["waiting", "closed"])
def test_an_answer_behind_bytes_waiting_for_the_loops_transport_waits_behind_them(closed):
    """It goes to the transport, in order (or nowhere, once the transport is closed): not to
    the socket, which takes bytes again."""

    def answer_and_read(proto, transport):
        proto.answer(b"last")

    (after, ran), reference = same_states(lambda *args: waiting_for_the_loop(*args, closed=closed), answer_and_read,
                                          answer_and_read, lost=True)
    assert after["loop_transport"] and after["owner"] == ["opened", "done", "closed"]
    assert "_write_last" not in ran and "_write_last" in reference[1]
    if closed:
        assert after["received"] == (b"", True)
    else:
        assert after["received"][0].startswith(b"early HTTP/1.1 200 OK") and after["received"][0].endswith(b"last")


def test_an_answer_the_socket_takes_part_of_sends_the_rest_through_the_transport():
    """The socket has room for part of the last bytes (its buffer and the client's window are
    small): the rest goes through the transport, once, after that part."""
    size = SEPARATE_BODY - 500

    def room_for_part(proto, transport, client):
        sock = socket.socket(fileno=transport._fd)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.detach()

    def answer_big(proto, transport):
        proto.answer(b"z" * size)
        proto.left = transport._pending_size  # (what the socket did not take)

    (after, ran), reference = same_states(room_for_part, answer_big, answer_big, lost=True, ends=unix_ends)
    data, ended = after["received"]
    assert ended and data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\n" + b"z" * size)
    assert after["loop_transport"] and 0 < after["left"] < size and "_write_last" not in ran


def unix_ends() -> tuple[socket.socket, socket.socket]:
    """``(server, client)`` of a Unix stream connection, the server's non-blocking: a send takes
    as much as its buffer holds, and no more."""
    server, client = socket.socketpair()
    server.setblocking(False)
    client.settimeout(5)
    return server, client


class OwnLoss(Compiled):
    """Keeps close, replaces connection_lost: its answers' close is compiled, its loss its own."""

    def connection_lost(self, exc):
        self._owner.calls.append("its own loss")
        super().connection_lost(exc)


def test_a_connection_that_replaces_connection_lost_has_it_called_after_the_compiled_close():
    end, (data, ended), steps = serve(OwnLoss, AcceptedTransport, CLOSING % b"now-3")
    assert ended and data.endswith(b"xxx") and end["owner"] == ["opened", "done", "its own loss", "closed"]
    assert steps == {"connection_lost"}


def test_without_the_sockets_descriptor_the_last_bytes_go_through_the_transport():
    end, (data, ended), _ = assert_same(CLOSING % b"now-10", ran=STEPS - {"_write_last"}, socket_fd=False)
    assert ended and data.endswith(b"x" * 10) and end["fd"] == -1


def test_an_answer_the_socket_does_not_take_whole_waits_for_the_loops_transport_which_closes():
    """The rest goes to the loop's transport: the close waits for it (pending), and the loss is
    then the loop transport's, by connection_lost."""
    size = SEPARATE_BODY - 500
    end, (data, ended), _ = assert_same(CLOSING % b"now-%d" % size, ran={"_write_last", "close"}, hand=handing_over,
                                        full=True)
    assert ended and data.startswith(b"-" * 65536) and data.endswith(b"x" * size)
    assert end["loop_transport"] and end["owner"] == ["opened", "done", "closed"] and end["timer"] is GONE_TIMER


def test_a_client_gone_before_the_answer_gets_nothing_and_the_connection_ends():
    """The last bytes' send fails (a reset): they go to the transport, which learns it."""

    def prepare(proto, transport, client):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        with select.epoll() as poll:  # (the reset has come: the socket tells of an error)
            poll.register(transport._fd, select.EPOLLERR)
            assert poll.poll(5)

    def answer(proto, transport):
        proto.answer(b"late")

    (after, ran), reference = same_states(prepare, answer, answer, CLOSING % b"later", lost=True)
    assert after["owner"] == ["opened", "done", "closed"] and after["loop_transport"]
    assert "_write_last" not in ran and "_write_last" in reference[1]


def same_states(prepare, call_compiled, call_reference, request=CLOSING % b"later", lost=False, ends=tcp_ends):
    """``prepare(proto, transport, client)`` on a Compiled and a Reference connection served on
    their sockets with ``request`` read at accept (and not answered); then each called its way:
    the same state after, and what the profiler saw of the compiled and of the reference.
    ``lost``: the state once the connection is lost."""

    def run(kind, transport_kind, call):
        async def main():
            loop = asyncio.get_running_loop()
            proto, transport, client = served(loop, kind, transport_kind, request, ends=ends)
            transport.serve(proto.connection_made, transport)
            prepare(proto, transport, client)
            try:
                reading = None
                with Steps() as steps:
                    call(proto, transport)
                    if lost:  # (and what the client gets from the case's start)
                        if client.fileno() >= 0:
                            reading = loop.run_in_executor(None, read_until_eof, client)
                        await wait_for(lambda: proto._owner.calls[-1:] == ["closed"])
                after = state(proto, transport)
                after["left"] = getattr(proto, "left", None)
                if reading is not None:  # (less what filled the socket before, which the case counts)
                    data, ended = await reading
                    filled = getattr(proto, "filled", 0)
                    assert data[:filled] == b"-" * filled
                    after["received"] = undated(data[filled:]), ended
                return after, steps.ran
            finally:
                client.close()
                transport.abort()  # (what the case left open)
                await wait_for(lambda: transport._pending is None)
                if transport._fd >= 0:  # (closing, as the cases of a loss leave it)
                    os.close(transport._fd)

        return uvloop.run(main())

    compiled = run(Compiled, AcceptedTransport, call_compiled)
    reference = run(Reference, ReferenceTransport, call_reference)
    assert compiled[0] == reference[0]
    return compiled, reference


def lose_compiled(proto, transport):
    transport._closing = True
    accepted_lost(transport, None)


def lose_reference(proto, transport):
    transport._closing = True
    transport._lost(None)


def no_request(proto):
    proto._head = None
    proto._sink = server_module.NULL_SINK


@pytest.mark.parametrize("timer", ["none", "made", "first wait", "bytes held"])
def test_the_loss_forgets_the_timer_and_the_first_wait_as_connection_lost_does(timer):
    def prepare(proto, transport, client):
        no_request(proto)
        if timer == "made":
            proto._start_timer("keepalive", 5.0)
        elif timer == "first wait":
            proto.config.first_waits.add(proto, proto.loop)
        elif timer == "bytes held":
            proto._corked, proto._corked_size = [b"held"], 4

    (after, ran), _ = same_states(prepare, lose_compiled, lose_reference)
    assert after["timer"] is GONE_TIMER and after["owner"] == ["opened", "closed"] and after["app"]
    assert not ran & {"connection_lost", "_lost"}


@pytest.mark.parametrize("what", ["request", "drain waiter", "rate", "lease"])
def test_a_loss_with_more_to_end_goes_to_connection_lost(what):
    """A request being answered, a drain awaited, a rate watched, a lease kept: the reference
    ends them."""

    def prepare(proto, transport, client):
        if what != "request":
            no_request(proto)
        if what == "drain waiter":
            proto.loss_waiter()
        elif what == "rate":
            proto._watch_response()
        elif what == "lease":
            proto._keep_lease(proto.lease_socket())

    (after, ran), _ = same_states(prepare, lose_compiled, lose_reference)
    assert "connection_lost" in ran and not after["transport"] and after["timer"] is GONE_TIMER


def test_a_loss_of_a_connection_lost_already_changes_nothing_more():
    def prepare(proto, transport, client):
        no_request(proto)
        proto.connection_lost(None)

    (after, ran), _ = same_states(prepare, lose_compiled, lose_reference)
    assert after["owner"] == ["opened", "closed"] and "connection_lost" not in ran


def answer(proto, transport):
    proto.answer(b"bye")


def test_a_close_cancels_the_connections_timer():
    def prepare(proto, transport, client):
        proto._start_timer("keepalive", 5.0)

    (after, ran), _ = same_states(prepare, answer, answer)
    assert after["closing"] and after["timer"] == "ConnectionTimer" and not ran & {"close", "_close_socket"}


def test_a_close_while_lingering_leaves_the_transport_open():
    def prepare(proto, transport, client):
        proto._linger_left = 10

    (after, ran), _ = same_states(prepare, answer, answer)
    assert not after["closing"] and after["transport"] and "close" not in ran


@pytest.mark.parametrize("why", ["body unread", "input failed", "lease kept"])
def test_a_close_the_common_case_does_not_cover_goes_to_close(why):
    """A request whose body the client may still be sending, or whose input failed: the
    reference half-closes and drains (linger). A lease kept: it releases it first."""
    request = CLOSING % b"later"
    if why == "body unread":
        request = b"POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"

    def prepare(proto, transport, client):
        if why == "input failed":
            proto._input_failed = True
        elif why == "lease kept":
            proto._keep_lease(proto.lease_socket())

    (after, ran), _ = same_states(prepare, answer, answer, request)
    assert "close" in ran
    if why in ("body unread", "input failed"):
        assert after["lingering"] and not after["closing"]
    else:
        assert after["closing"] and after["corked"] is None
