"""``handle_events`` (_dispatch.c): ``channel._handle_events(events)`` compiled for one whole
request without a body, and the methods it stands for (``_handle_events``, ``_start_request``),
its reference.

``Reference`` below replaces ``_start_request`` by itself, so the C declines its events. Each
case sends a ``Compiled`` and a ``Reference`` connection the same requests on real socket pairs
under uvloop, and the two must leave the same state behind after each (every slot of the
connection, its parser's and its timer's, what its app was given), and the same bytes on the wire.
A profile of the Python calls tells which way each request went.
"""

import asyncio

import pytest
import uvloop

from helpers import PythonCalls, connected, read_to_end, undated, wait_for
from server.protocol import server as server_module
from server.protocol.forwarded import AllowList, ProxyPolicy
from server.protocol.heads import STATUS_LINE
from server.protocol.server import NULL_SINK, ServerConfig, ServerHttpProtocol
from server.protocol.timers import ConnectionTimer

handle_events = server_module.handle_events
pytestmark = pytest.mark.skipif(handle_events is None, reason="the compiled helpers are not in use "
                                                              "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
IGNORED = {"loop", "config", "log", "_owner", "transport", "app", "pass_end", "_parser", "_timer", "_body_rate",
           "_response_rate", "peername", "sockname", "socket_fd", "_started", "_direct"}


class Sink:
    """What a kind's on_request may give for a request's body."""

    def __bool__(self):
        return True


class Compiled(ServerHttpProtocol):
    """A connection its own app: keeps each head and the state it was dispatched in. ``/now`` is
    answered at once, while the connection dispatches it; ``/sink`` gives a sink; ``/raise`` raises."""

    def __init__(self, config):
        super().__init__(config)
        self.heads = []
        self.seen = []

    def on_request(self, head):
        self.heads.append(head)
        self.seen.append((head.path, self._dispatching, self._head is head, self._continue_pending,
                          self.request_forwarded[0] is head, self.idle_until))
        if head.path == "/raise":
            raise ValueError("on_request failed")
        if head.path == "/now":
            self.answer(b"now")
        if head.path == "/task":
            self.start_task(self.step())
        return SINK if head.path == "/sink" else None

    async def step(self):
        self.seen.append(("stepped", self._dispatching))
        await asyncio.sleep(0)
        self.seen.append(("second step", self._dispatching))

    def answer(self, body: bytes):
        response, data = self.response_head(self.heads[-1], "200 OK", STATUS_LINE, (), len(body))
        self.send_response(response, data, body, True, len(body))


class Reference(Compiled):
    def _start_request(self, head):
        super()._start_request(head)


SINK = Sink()


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def state(proto) -> dict:
    slots = {name: getattr(proto, name, "<unset>") for name in ServerHttpProtocol.__slots__ if name not in IGNORED}
    for name in ("_head", "_response", "exchange", "idle_until"):
        slots[name] = None if slots[name] is None else type(slots[name]).__name__
    forwarded = slots["request_forwarded"]
    slots["request_forwarded"] = None if forwarded is None else (forwarded[0].path, forwarded[1].client,
                                                                 forwarded[1].error)
    slots["_sink"] = "NULL_SINK" if slots["_sink"] is NULL_SINK else type(slots["_sink"]).__name__
    parser = proto._parser
    slots["parser"] = (parser.state, bytes(parser.buffer))
    timer = proto._timer
    slots["timer"] = (timer.phase, timer._seconds) if type(timer) is ConnectionTimer else (type(timer).__name__,
                                                                                           timer.phase)
    slots["transport"] = None if proto.transport is None else proto.transport.is_closing()
    slots["seen"] = [(path, *rest[:4], type(rest[4]).__name__) for path, *rest in proto.seen]
    return slots


def run_case(sends: list, config_kwargs=None) -> tuple:
    """Each of ``sends`` (bytes, and how many requests the connection has then seen) on a
    Compiled and a Reference connection: the states after each, the bytes the client got, and
    how many Python calls of the methods each made."""

    async def one(cls):
        proto = cls(ServerConfig(keepalive=5, **(config_kwargs or {})))
        client = await connected(proto)
        loop = asyncio.get_running_loop()
        steps = []
        with PythonCalls(ServerHttpProtocol._handle_events, ServerHttpProtocol._start_request) as calls:
            for data, count in sends:
                await loop.sock_sendall(client, data)
                # (a request the app gets is dispatched by then; one refused has its answer and waits for
                # the next, or is closed)
                await wait_for(lambda: (len(proto.heads) >= count if count else proto.idle_until is not None)
                               or proto.transport is None)
                steps.append(state(proto))
                if proto._head is not None and proto.transport is not None:  # (the next may come)
                    proto.answer(b"ok")
        if proto.transport is not None:
            proto.transport.close()
        received = await read_to_end(client)
        client.close()
        return steps, undated(received), calls.count

    return uvloop.run(one(Compiled)), uvloop.run(one(Reference))


def assert_same(sends, config_kwargs=None, taken=True):
    compiled, reference = run_case(sends, config_kwargs)
    assert compiled[:2] == reference[:2]
    if taken:  # (the C took every request of the compiled one: no Python call of the methods)
        assert compiled[2] == 0 and reference[2] > 0
    else:
        assert compiled[2] == reference[2] > 0
    return compiled


GET = b"GET /%s HTTP/1.1\r\nHost: t\r\n%s\r\n"


def test_requests_kept_alive_start_as_start_request_starts_them():
    steps, received, _ = assert_same([(GET % (b"a", b""), 1), (GET % (b"sink", b""), 2),
                                      (GET % (b"b", b"Expect: 100-continue\r\n"), 3)])
    assert steps[-1]["seen"] == [("/a", True, True, False, True, "NoneType"), ("/sink", True, True, False, True,
                                                                             "NoneType"),
                                 ("/b", True, True, True, True, "NoneType")]
    assert [s["_sink"] for s in steps] == ["NULL_SINK", "Sink", "NULL_SINK"]
    assert steps[-1]["_dispatching"] is False and steps[-1]["timer"] == (None, 5) and received.count(b"200 OK") == 3


def test_an_answer_given_while_dispatching_brings_the_pipelined_request_after_it():
    """The C takes the first; the next, parsed once the first is answered, goes by the method."""
    compiled, reference = run_case([(GET % (b"now", b"") + GET % (b"next", b""), 2)])
    assert compiled[:2] == reference[:2] and (compiled[2], reference[2]) == (2, 3)
    steps, received, _ = compiled
    assert [seen[0] for seen in steps[0]["seen"]] == ["/now", "/next"] and received.count(b"200 OK") == 2


@pytest.mark.parametrize("data,config_kwargs", [
    (b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", None),  # a body: the method's
    (GET % (b"logged", b""), {"access_log": True, "log": QuietLog()}),  # recorded
    (b"DELETE /x HTTP/1.1\r\nHost: t\r\n\r\n", {"allowed_methods": frozenset({"GET"})}),  # a 405
    (GET % (b"u", b"X_Under: 1\r\n"), {"refuse_underscores": True}),  # a 400
], ids=["body", "recorded", "method", "underscore"])
def test_other_requests_go_to_the_methods(data, config_kwargs):
    """(The methods ran for the compiled one too: as many calls.)"""
    refused = config_kwargs is not None and "log" not in config_kwargs
    steps, received, _ = assert_same([(data, 0 if refused else 1)], config_kwargs, taken=False)
    assert (b" 405 " in received or b" 400 " in received) if refused else steps[0]["seen"]


def test_a_forwarded_error_gets_its_400_as_start_request_gives_it():
    proxy = ProxyPolicy(AllowList("*"), secure_scheme_headers=(("X-Forwarded-Proto", "https"),),
                        proxy_headers="x-forwarded")
    fields = b"X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n"
    steps, received, _ = assert_same([(GET % (b"ok", b""), 1), (GET % (b"bad", fields), 1)], {"proxy": proxy})
    assert b"HTTP/1.1 400 " in received
    assert [seen[0] for seen in steps[-1]["seen"]] == ["/ok"]  # (the app never saw the bad one)


def test_what_on_request_raises_goes_up_and_the_connection_is_not_left_dispatching():
    async def main():
        proto = Compiled(ServerConfig())
        client = await connected(proto)
        events = proto._parser.feed(GET % (b"raise", b""))
        with pytest.raises(ValueError, match="on_request failed"):
            handle_events(proto, events)
        client.close()
        return proto._dispatching, proto._head is events[0], proto.seen[0][1]

    assert uvloop.run(main()) == (False, True, True)


@pytest.mark.parametrize("cls", [Compiled, Reference])
def test_a_task_started_for_the_first_bytes_takes_its_first_step_at_once(cls):
    """The first request of a connection, delivered at accept: a task its kind starts takes its first
    step before the bytes' delivery returns (eager.py), once the request is dispatched."""

    async def main():
        proto = cls(ServerConfig())
        client = await connected(proto)
        delivered = asyncio.get_running_loop().create_future()

        def deliver():  # (as a loop callback, outside any task, as connection_made runs)
            with PythonCalls(ServerHttpProtocol._handle_events, ServerHttpProtocol._start_request) as calls:
                proto.first_data_received(GET % (b"task", b""))
            delivered.set_result((list(proto.seen), calls.count))

        asyncio.get_running_loop().call_soon(deliver)
        stepped, count = await delivered
        await wait_for(lambda: len(proto.seen) == 3)  # (the task's second step)
        client.close()
        return stepped, proto.seen[-1], count

    stepped, last, calls = uvloop.run(main())
    assert [entry[0] for entry in stepped] == ["/task", "stepped"]
    assert stepped[1] == ("stepped", True)  # (while the request is dispatched)
    assert last == ("second step", False) and (calls == 0) is (cls is Compiled)

