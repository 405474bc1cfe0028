"""``answer_whole`` (_answer.c): ``channel.send_response(head, data, body, True, size)`` of a
whole answer, compiled, on a connection kept alive and on one the answer closes; and its end,
``response_finished``, where the other ends of a response go on.

Its reference is send_response and the methods it goes through, which run for a subclass
that replaces one of them: ``Reference`` below replaces ``send_response`` by itself, so the C
declines it. Each case drives a ``Compiled`` and a ``Reference`` connection on real socket
pairs through the same requests and answers, and the two must leave the same bytes on the
wire and the same state behind (the connection's slots, its parser's, its timer's, and the
calls to its owner and its access log), whether the C takes the answer or hands it back.
"""

import asyncio
import socket

import pytest
import uvloop

from helpers import ConnectionOwner, connected, read_to_end, undated, wait_for
from server.protocol import server as server_module
from server.protocol.heads import STATUS_LINE
from server.protocol.response import SEPARATE_BODY
from server.protocol.server import ServerConfig, ServerHttpProtocol
from server.protocol.timers import ConnectionTimer
from server.wsgi.exchange import WSGIExchange, answer_exchange

answer_whole = server_module.answer_whole
pytestmark = pytest.mark.skipif(answer_whole is None, reason="the compiled helpers are not in use "
                                                             "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
REQUEST = b"GET /%s HTTP/1.1\r\nHost: t\r\n%s\r\n"


class AccessLog:
    """A logger that keeps the access records (the channel records a request through it)."""

    def __init__(self):
        self.records = []

    def access(self, resp, req, environ, request_time):
        self.records.append((resp.status, req.path, resp.sent, environ.get("marker")))

    def debug(self, *args, **kwargs):
        pass

    warning = info = exception = error = debug


class Compiled(ServerHttpProtocol):
    """A connection its own app: keeps the heads; the test answers. ``/now`` is answered at
    once, while the connection dispatches it."""

    def __init__(self, config, owner):
        super().__init__(config, owner=owner)
        self.heads = []
        self.results = []

    def on_request(self, head):
        self.heads.append(head)
        if head.path == "/now":
            self.answer(b"now")

    def answer(self, body: bytes, fields=(("Content-Type", "text/plain"),)):
        head = self.heads[-1]
        response, data = self.response_head(head, "200 OK", STATUS_LINE, tuple(fields), len(body))
        self.results.append(answer_whole(self, response, data, body, len(body)))

    def stream(self, pieces):
        """A body in pieces, chunked: its end goes on by ``response_finished`` (compiled)."""
        head = self.heads[-1]
        response, data = self.response_head(head, "200 OK", STATUS_LINE, (), None)
        self.results.append(self.send_response(response, data, pieces[0], False, 0))
        for piece in pieces[1:-1]:
            self.send_body(piece)
        self.end_response(pieces[-1])

    exchange_class = WSGIExchange

    def answer_by_exchange(self, body: bytes):
        """As a WSGI exchange's whole answer goes: ``answer_exchange`` on the loop."""
        head = self.heads[-1] if self.heads else None
        exchange = object.__new__(self.exchange_class)
        exchange.protocol = self
        exchange._environ = {"marker": f"environ of {head.path}" if head else None}
        exchange._response = self.response_head(head, "200 OK", STATUS_LINE, (), len(body))
        self.results.append((answer_exchange(exchange, body, len(body)), type(exchange._response).__name__))


class ReferenceExchange(WSGIExchange):
    """A WSGI exchange, but not of its exact class: its _head_on_loop runs."""

    __slots__ = ()


class Reference(Compiled):
    python_sends = 0  # (each of its answers is sent here, by the reference)
    exchange_class = ReferenceExchange

    def send_response(self, head, data, body=b"", end=False, size=0):
        self.python_sends += 1
        return super().send_response(head, data, body, end, size)


IGNORED = {"loop", "config", "log", "_owner", "transport", "app", "pass_end", "_parser", "_timer", "_body_rate",
           "_response_rate", "peername", "sockname", "socket_fd", "_started"}


def state(proto) -> dict:
    """What the connection, its parser and its timer hold, as far as two connections fed the
    same bytes at different moments can agree."""
    slots = {name: getattr(proto, name, "<unset>") for name in ServerHttpProtocol.__slots__ if name not in IGNORED}
    slots["idle_until"] = type(slots["idle_until"]).__name__  # (a time)
    framing = slots["framing"]
    slots["framing"] = None if framing is None else (type(framing).__name__, framing.sent)
    for name in ("_head", "_response", "exchange", "request_forwarded"):
        value = slots[name]
        slots[name] = None if value is None else type(value).__name__
    parser = proto._parser
    slots["parser"] = (parser.state, bytes(parser.buffer), parser._scan_from, parser._body_size)
    timer = proto._timer
    if type(timer) is ConnectionTimer:
        slots["timer"] = (timer.phase, timer._seconds, timer._handle is None, timer._handle_when <= timer.deadline,
                          timer.deadline == proto.idle_until if proto.idle_until is not None else None)
    else:
        slots["timer"] = type(timer).__name__
    slots["transport"] = None if proto.transport is None else proto.transport.is_closing()
    slots["_corked"] = None if proto._corked is None else [undated(piece) for piece in proto._corked]
    end = proto.pass_end
    slots["pass_end"] = (end.expected, end.answered, len(end.held), proto in end.held, end._handle is None)
    slots["owner"] = list(proto._owner.calls)
    slots["access"] = list(proto.log.records) if isinstance(proto.log, AccessLog) else None
    slots["heads"] = [head.path for head in proto.heads]
    slots["results"] = list(proto.results)
    return slots


def run_case(case, config_kwargs=None, sends=True):
    """``case(proto, client)`` (a coroutine function returning a list of steps' states) for a
    Compiled and a Reference connection: the states and the bytes the client got. ``sends``:
    the case's answers are sent (the reference's by its send_response)."""

    async def one(cls):
        log = AccessLog() if (config_kwargs or {}).get("access_log") else None
        proto = cls(ServerConfig(keepalive=5, log=log, **(config_kwargs or {})), ConnectionOwner())
        client = await connected(proto)
        try:
            steps = await case(proto, client)
            if proto.transport is not None:
                proto.transport.close()  # (after what it holds is written)
            received = undated(await read_to_end(client, 10))
            if cls is Reference:  # (the C declined every answer of the reference)
                assert proto.python_sends == (len(proto.results) if sends else 0) and proto.results
        finally:
            client.close()
            if proto.transport is not None:
                proto.transport.close()
            await asyncio.sleep(0)
        return steps, received

    compiled = uvloop.run(one(Compiled))
    reference = uvloop.run(one(Reference))
    return compiled, reference


def assert_same(case, config_kwargs=None):
    compiled, reference = run_case(case, config_kwargs)
    assert compiled[0] == reference[0]
    assert compiled[1] == reference[1]
    return compiled


async def request(proto, client, path="a", fields=b"", count=1):
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(client, REQUEST % (path.encode(), fields))
    await wait_for(lambda: len(proto.heads) >= count)


def test_answers_kept_alive_leave_the_state_send_response_leaves():
    """The first answer waits for the next request with a timer made for it (send_response's
    way), the others with that timer: the compiled way."""

    async def case(proto, client):
        steps = []
        for count in range(1, 4):
            await request(proto, client, f"r{count}", count=count)
            proto.answer(b"hello %d" % count)
            steps.append(state(proto))
        return steps

    (steps, received) = assert_same(case)
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 3 and received.endswith(b"hello 3")
    assert steps[-1]["timer"][0] == "keepalive" and steps[-1]["owner"] == ["opened", "done", "done", "done"]


def test_a_pipelined_request_starts_as_the_answer_before_it_ends():
    async def case(proto, client):
        loop = asyncio.get_running_loop()
        await request(proto, client, "first")
        proto.answer(b"1")
        await loop.sock_sendall(client, REQUEST % (b"a", b"") + REQUEST % (b"b", b""))
        await wait_for(lambda: len(proto.heads) == 2)
        proto.answer(b"2")
        steps = [state(proto)]
        proto.answer(b"3")
        steps.append(state(proto))
        return steps

    (steps, received) = assert_same(case)
    assert steps[0]["heads"] == ["/first", "/a", "/b"] and received.count(b"200 OK") == 3


@pytest.mark.parametrize("last", [b"", b"Connection: close\r\n"], ids=["kept", "closed"])
@pytest.mark.parametrize("body", [b"x" * (SEPARATE_BODY - 200), b"y" * SEPARATE_BODY, b""])
def test_bodies_of_every_size_go_as_send_response_sends_them(body, last):
    async def case(proto, client):
        steps = []
        for count in (1, 2):
            await request(proto, client, f"r{count}", last if count == 2 else b"", count=count)
            proto.answer(body)
            steps.append(state(proto))
        return steps

    (steps, received) = assert_same(case)
    assert received.count(body) >= 2 if body else received.count(b"Content-Length: 0\r\n") == 2
    assert steps[-1]["transport"] is (True if last else False)  # (closing, or kept)


def test_an_answer_that_closes_goes_as_send_response_sends_it():
    async def case(proto, client):
        await request(proto, client, "a")
        proto.answer(b"1")
        await request(proto, client, "b", b"Connection: close\r\n", count=2)
        proto.answer(b"2")
        return [state(proto)]

    (steps, received) = assert_same(case)
    assert steps[0]["transport"] is True and received.endswith(b"2")  # (closing)


def test_an_answer_after_the_clients_end_of_input_closes():
    async def case(proto, client):
        await request(proto, client, "a")
        proto.answer(b"1")
        await request(proto, client, "b", count=2)
        client.shutdown(socket.SHUT_WR)
        await wait_for(lambda: proto._peer_eof)
        proto.answer(b"2")
        return [state(proto)]

    (steps, _) = assert_same(case)
    assert steps[0]["transport"] is True  # (closing)


def test_the_access_log_records_each_answer():
    async def case(proto, client):
        steps = []
        for count, last in ((1, b""), (2, b""), (3, b"Connection: close\r\n")):
            await request(proto, client, f"r{count}", last, count=count)
            proto.answer(b"logged")
            steps.append(state(proto))
        return steps

    (steps, _) = assert_same(case, {"access_log": True})
    assert steps[-1]["access"] == [("200 OK", f"/r{count}", 6, None) for count in (1, 2, 3)]


def test_an_answer_given_while_its_request_is_dispatched_lets_the_next_wait():
    async def case(proto, client):
        await request(proto, client, "a")
        proto.answer(b"1")
        await request(proto, client, "now", count=2)
        return [state(proto)]

    (steps, received) = assert_same(case)
    assert steps[0]["_advance_pending"] is False and steps[0]["timer"][0] == "keepalive" and received.endswith(b"now")


def test_a_shorter_keep_alive_arms_the_timer_again():
    """The timer armed for a longer wait fires too late for a shorter one: cancelled, armed again."""

    async def case(proto, client):
        steps = []
        for count, keepalive in ((1, 30.0), (2, 30.0), (3, 1.0)):
            proto.config.keepalive = keepalive
            await request(proto, client, f"r{count}", count=count)
            armed = proto._timer._handle
            proto.answer(b"x")
            steps.append(state(proto))
            steps.append(armed is None or (armed is proto._timer._handle, armed.cancelled()))
        return steps

    (steps, _) = assert_same(case)
    assert steps[-2]["timer"][1:4] == (1.0, False, True)
    assert steps[-1] == (False, True) and steps[3] == (True, False)  # (the third: the first handle cancelled)


def test_reading_paused_for_another_reason_goes_as_send_response_goes():
    async def case(proto, client):
        await request(proto, client, "a")
        proto.answer(b"1")
        await request(proto, client, "b", count=2)
        proto.pause_reading("test")
        proto.answer(b"2")
        return [state(proto)]

    (steps, _) = assert_same(case)
    assert steps[0]["_read_paused_by"] == {"test"}


def test_an_answer_that_fills_the_transport_lets_the_next_request_wait_for_the_drain():
    """The write the answer goes in passes the transport's high-water mark (the client reads
    nothing): the connection pauses, and the next request waits for the drain."""

    async def case(proto, client):
        await request(proto, client, "a")
        proto.answer(b"1")
        await request(proto, client, "b", count=2)
        transport = proto.transport
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        while not transport.get_write_buffer_size():  # (the kernel's buffers full: the transport keeps the rest)
            transport.write(b"-" * 65536)
        transport.set_write_buffer_limits(high=transport.get_write_buffer_size() + 10)
        assert not proto.writing_paused
        proto.answer(b"past the mark")
        return [state(proto)]

    compiled, reference = run_case(case)
    assert compiled[0] == reference[0]
    assert compiled[0][0]["writing_paused"] and compiled[0][0]["_advance_when_drained"]


def test_a_class_changed_after_its_first_answer_is_declined_from_then_on():
    """The verdict on a channel class holds while the class is unchanged: a method replaced
    later runs for the next answer."""

    class Changed(Compiled):
        pass

    async def main():
        proto = Changed(ServerConfig(keepalive=5), ConnectionOwner())
        client = await connected(proto)
        finished = []
        for count in (1, 2, 3):
            if count == 3:
                Changed.response_finished = lambda self, keep_alive: (finished.append(keep_alive),
                                                                      ServerHttpProtocol.response_finished(self,
                                                                                                           keep_alive))
            await request(proto, client, f"r{count}", count=count)
            proto.answer(b"x")
        client.close()
        proto.transport.close()
        return finished

    assert uvloop.run(main()) == [True]


def test_more_classes_than_the_verdicts_kept_are_each_judged_as_they_are():
    """The C keeps its verdict on 8 classes (``N_SEEN``); past them each answer judges its class
    again. Ten classes, each replacing ``response_finished`` after two answers: every third
    answer runs the replacement, whether its class's verdict was kept or not."""
    classes = [type(f"Kind{i}", (Compiled,), {}) for i in range(10)]

    async def main():
        finished = []
        protos = [(cls, cls(ServerConfig(keepalive=5), ConnectionOwner())) for cls in classes]
        clients = [await connected(proto) for _, proto in protos]
        for count in (1, 2, 3):
            for (cls, proto), client in zip(protos, clients):
                if count == 3:
                    cls.response_finished = (lambda name: lambda self, keep_alive: (
                        finished.append(name), ServerHttpProtocol.response_finished(self, keep_alive)))(cls.__name__)
                await request(proto, client, f"r{count}", count=count)
                proto.answer(b"x")
                assert proto._timer.phase == "keepalive" and proto._head is None
        for (_, proto), client in zip(protos, clients):
            client.close()
            proto.transport.close()
        return finished

    assert uvloop.run(main()) == [cls.__name__ for cls in classes]


def test_a_wsgi_exchanges_whole_answer_goes_as_head_on_loop_sends_it():
    """``answer_exchange``: the head made on the app thread goes out with its body on the loop,
    the exchange keeps the head, and the access log gets the app's environ."""

    async def case(proto, client):
        steps = []
        for count, last in ((1, b""), (2, b""), (3, b"Connection: close\r\n")):
            await request(proto, client, f"r{count}", last, count=count)
            proto.answer_by_exchange(b"by exchange %d" % count)
            steps.append(state(proto))
        return steps

    (steps, received) = assert_same(case, {"access_log": True})
    assert steps[-1]["results"] == [(None, "Head")] * 3 and received.endswith(b"by exchange 3")
    assert steps[-1]["access"] == [("200 OK", f"/r{count}", 13, f"environ of /r{count}") for count in (1, 2, 3)]


def test_an_exchange_whose_connection_is_gone_sends_nothing():
    async def case(proto, client):
        await request(proto, client, "a")
        proto.transport.close()
        await wait_for(lambda: proto.transport is None)  # (connection_lost, from the loop)
        proto.answer_by_exchange(b"too late")
        return [state(proto)]

    compiled, reference = run_case(case, sends=False)
    (steps, received) = compiled
    assert reference == compiled
    assert steps[0]["results"] == [(None, "tuple")] and steps[0]["owner"] == ["opened", "closed"]
    assert received == b""



def test_a_streamed_answer_ends_as_response_finished_ends_it():
    async def case(proto, client):
        steps = []
        for count, last in ((1, b""), (2, b""), (3, b""), (4, b"Connection: close\r\n")):
            await request(proto, client, f"r{count}", last, count=count)
            proto.stream([b"piece one, ", b"piece two, ", b"the end %d" % count])
            steps.append(state(proto))
        return steps

    (steps, received) = assert_same(case, {"access_log": True})
    assert received.count(b"Transfer-Encoding: chunked") == 4 and steps[-1]["transport"] is True
    assert steps[-2]["timer"][0] == "keepalive" and [r[:3] for r in steps[-1]["access"]] == [
        ("200 OK", f"/r{count}", 31) for count in (1, 2, 3, 4)]


# -- the answers a pass expects (cork.py): held until the last, which writes them all ----------
# Each case answers within one pass of the loop (no await between its answers: the pass's end
# writes what is held), its requests pipelined: an answer's end starts the next.


def received_now(client) -> bytes:
    """What the client can read now."""
    try:
        return client.recv(65536)
    except BlockingIOError:
        return b""


async def pipelined(proto, client, *paths, fields=b""):
    """Requests for ``paths`` in one write; the first read."""
    await asyncio.get_running_loop().sock_sendall(client, b"".join(REQUEST % (p.encode(), fields) for p in paths))
    await wait_for(lambda: len(proto.heads) >= 1)


async def another(proto):
    """A second connection of ``proto``'s class on the same loop (so in the same passes), and
    its client's end."""
    other = type(proto)(ServerConfig(keepalive=5), ConnectionOwner())
    return other, await connected(other)


async def pass_ended(proto) -> None:
    """Until the pass's callback has written what it held (``PassEnd._pass_ended``)."""
    await wait_for(lambda: proto.pass_end._handle is None)


def test_an_answer_before_the_last_the_pass_expects_is_held_and_the_last_writes_both():
    async def case(proto, client):
        await pipelined(proto, client, "r1", "r2")
        proto.pass_end.expected = 2  # (two request tasks started in this pass)
        proto.answer(b"held")
        steps = [state(proto), received_now(client)]
        proto.answer(b"last")
        steps += [state(proto), undated(received_now(client))]
        return steps

    (steps, _) = assert_same(case)
    assert steps[0]["_corked"][0].endswith(b"held") and steps[0]["pass_end"] == (2, 1, 1, True, False)
    assert steps[0]["heads"] == ["/r1", "/r2"] and steps[1] == b""
    assert steps[2]["_corked"] is None and steps[2]["pass_end"] == (0, 0, 0, False, True)
    assert steps[3].count(b"200 OK") == 2 and steps[3].index(b"held") < steps[3].index(b"last")


def test_the_last_answer_of_a_pass_nothing_was_held_in_goes_at_once():
    async def case(proto, client):
        await pipelined(proto, client, "r1")
        proto.pass_end.expected, proto.pass_end.answered = 3, 2
        proto.answer(b"alone")
        return [state(proto), undated(received_now(client))]

    (steps, _) = assert_same(case)
    assert steps[0]["pass_end"] == (0, 0, 0, False, True) and steps[1].endswith(b"alone")


def test_a_connection_in_the_pass_already_is_not_held_twice():
    """Its first answer held, then written (a sendfile's uncork): its next answer is held
    again, the connection still once in the pass's list."""

    async def case(proto, client):
        await pipelined(proto, client, "r1", "r2", "r3")
        proto.pass_end.expected = 3
        proto.answer(b"first")
        proto.uncork()
        proto.answer(b"second")
        steps = [state(proto)]
        proto.answer(b"third")
        steps += [state(proto), undated(received_now(client))]
        return steps

    (steps, _) = assert_same(case)
    assert steps[0]["pass_end"] == (3, 2, 1, True, False) and steps[0]["_corked"][0].endswith(b"second")
    assert steps[1]["pass_end"] == (0, 0, 0, False, True) and steps[2].endswith(b"third")


def test_answers_of_several_connections_are_held_and_written_in_one_pass_end():
    """Three connections, three answers expected: the first two held (the second joins the
    pass's list the first scheduled), the third writes every one."""

    async def case(proto, client):
        pairs = [await another(proto) for _ in range(2)]
        others = [other for other, _ in pairs]
        clients = [client] + [other_client for _, other_client in pairs]
        protos = [proto] + others
        for index, (each, each_client) in enumerate(zip(protos, clients)):
            await pipelined(each, each_client, f"c{index}")
        proto.pass_end.expected = 3
        steps = []
        for index, each in enumerate(protos):
            each.answer(b"answer %d" % index)
            steps.append((state(each), [received_now(c) != b"" for c in clients]))
        for other in others:
            other.transport.close()
        return steps

    (steps, _) = assert_same(case)
    assert [step[0]["pass_end"][:3] for step in steps] == [(3, 1, 1), (3, 2, 2), (0, 0, 0)]
    assert [step[1] for step in steps] == [[False] * 3, [False] * 3, [True] * 3]


def test_a_held_answer_that_closes_goes_out_with_the_close():
    async def case(proto, client):
        await pipelined(proto, client, "r1", fields=b"Connection: close\r\n")
        proto.pass_end.expected = 2
        proto.answer(b"closing")
        return [state(proto), undated(await read_to_end(client))]

    (steps, _) = assert_same(case)
    assert steps[0]["transport"] is not False and steps[1].endswith(b"closing")
    assert steps[0]["pass_end"][:2] == (2, 1)


def test_what_a_pass_held_goes_out_at_its_end_when_not_every_answer_came():
    """Two answers of three held; the pass's callback writes them (``write_held``)."""

    async def case(proto, client):
        other, other_client = await another(proto)
        await pipelined(proto, client, "a")
        await pipelined(other, other_client, "b")
        proto.pass_end.expected = 3
        proto.answer(b"held a")
        other.answer(b"held b")
        steps = [(state(proto), state(other), received_now(client), received_now(other_client))]
        await pass_ended(proto)
        steps.append((state(proto), state(other), undated(received_now(client)),
                      undated(received_now(other_client))))
        other.transport.close()
        return steps

    (steps, _) = assert_same(case)
    assert steps[0][2:] == (b"", b"") and steps[0][1]["pass_end"][:3] == (3, 2, 2)
    assert steps[1][2].endswith(b"held a") and steps[1][3].endswith(b"held b")
    assert steps[1][0]["pass_end"] == (0, 0, 0, False, True) and steps[1][0]["_uncork_due"] is False


def test_a_connection_paused_for_writing_counts_what_the_pass_end_writes():
    async def case(proto, client):
        await pipelined(proto, client, "a")
        proto.pass_end.expected = 2
        proto.writing_paused = True  # (as pause_writing leaves it, the transport not told)
        proto.answer(b"while paused")
        steps = [state(proto)]
        await pass_ended(proto)
        steps.append(state(proto))
        proto.writing_paused = False
        return steps

    (steps, _) = assert_same(case)
    assert steps[0]["_written_while_paused"] == 0 and steps[1]["_written_while_paused"] > len(b"while paused")


def test_a_connection_whose_write_fails_at_the_pass_end_is_reported_and_the_others_written():
    reports = []

    async def case(proto, client):
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reports.append(
            (context["message"], type(context["exception"]).__name__, type(context["protocol"]).__name__)))
        other, other_client = await another(proto)
        await pipelined(proto, client, "a")
        await pipelined(other, other_client, "b")
        proto.pass_end.expected = 3
        proto.answer(b"fails")
        other.answer(b"goes")
        proto.transport.write_eof()  # (a write after it raises)
        await pass_ended(proto)
        steps = [state(other), undated(received_now(other_client))]
        other.transport.close()
        return steps

    (steps, _) = assert_same(case)
    assert steps[1].endswith(b"goes")
    assert reports == [("Writing at the end of a loop pass failed", "RuntimeError", "Compiled"),
                       ("Writing at the end of a loop pass failed", "RuntimeError", "Reference")]


def test_a_connection_whose_write_side_was_shut_writes_nothing_at_the_pass_end():
    async def case(proto, client):
        await pipelined(proto, client, "a")
        proto.pass_end.expected = 2
        proto.answer(b"never sent")
        proto.write_closed = True  # (as a shutdown of its write side leaves it)
        await pass_ended(proto)
        return [state(proto), received_now(client)]

    (steps, _) = assert_same(case)
    assert steps[0]["_corked"] is None and steps[1] == b""
