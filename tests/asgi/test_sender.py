"""``asgi_sender`` (_send.c): the ``send`` an ASGI app is given, compiled for
``http.response.start`` and a whole body; ``HttpExchange.send`` is its reference, and runs for
every other message, and for an exchange of a subclass.

Each case serves the same app and requests on two ASGI connections over real socket pairs under
uvloop: one whose exchanges are ``HttpExchange``'s own (the C sends), one whose exchanges are of
a subclass (``send`` sends). The two must put the same bytes on the wire (the Date field masked),
log the same, and leave their exchanges in the same state.
"""

import asyncio
import re
from collections.abc import Coroutine

import pytest
import uvloop

from helpers import KeptLog, connected, parse_responses, wait_for
from server.asgi import exchange as exchange_module
from server.asgi import protocol as protocol_module
from server.asgi.exchange import HttpExchange
from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol.server import ServerConfig

pytestmark = pytest.mark.skipif(exchange_module.asgi_sender is None,
                                reason="the compiled helpers are not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)")
GET = b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n"
LAST = b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
STATE = ("_state", "_detached", "_body_ended", "_peer_closed", "_trailers", "_head_bytes")
OK = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}


class Reference(HttpExchange):
    """The reference: an exchange of a subclass, given its own ``send``."""

    __slots__ = ()


def exchange_state(exchange) -> dict:
    state = {name: getattr(exchange, name, "<unset>") for name in STATE}
    head_bytes = state["_head_bytes"]
    state["_head_bytes"] = re.sub(rb"Date: [^\r]*", b"Date: -", head_bytes) if type(head_bytes) is bytes else head_bytes
    state["_response"] = type(getattr(exchange, "_response", None)).__name__
    state["_body"] = None if exchange._body is None else (exchange._body._ended, exchange._body._size)
    return state


def serve(app, requests: bytes, reference: bool, read_after=None, protocol_class=ASGIServerHttpProtocol) -> tuple:
    """Serve ``requests`` on one connection: what the client read, what was logged, the state of
    each exchange once the connection ended, and the kinds of what the app's sends returned.
    ``read_after(protocol)``: a condition to wait for before the client reads."""
    exchanges, returned = [], []

    def make(channel, head, asgi):
        exchange = (Reference if reference else HttpExchange)(channel, head, asgi)
        exchanges.append(exchange)
        return exchange

    async def noting(scope, receive, send):
        async def noted(message):
            sent = send(message)
            returned.append(type(sent).__name__)
            return await sent
        await app(scope, receive, noted)

    async def main():
        loop = asyncio.get_running_loop()
        log = KeptLog()
        protocol = protocol_class(ASGIConfig(app=noting, log=log), ServerConfig(log=log, keepalive=5), loop=loop)
        client = await connected(protocol)
        await loop.sock_sendall(client, requests)
        if read_after is not None:
            await wait_for(lambda: read_after(protocol))
        received = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(client, 65536), 5):
            received += chunk
        client.close()
        await wait_for(lambda: protocol.transport is None)
        await wait_for(lambda: all(e.task is None or e.task.done() for e in exchanges))
        return received, log.lines

    made = protocol_module.HttpExchange
    protocol_module.HttpExchange = make
    try:
        received, lines = uvloop.run(main())
    finally:
        protocol_module.HttpExchange = made
    return re.sub(rb"Date: [^\r]*", b"Date: -", received), lines, [exchange_state(e) for e in exchanges], returned


def assert_same(app, requests: bytes, **kwargs) -> tuple:
    compiled = serve(app, requests, False, **kwargs)
    reference = serve(app, requests, True, **kwargs)
    assert compiled[:3] == reference[:3]
    assert set(reference[3]) <= {"coroutine"}
    return compiled


async def hello(scope, receive, send):
    await send(OK)
    await send({"type": "http.response.body", "body": b"hello " + scope["path"].encode()})


def test_whole_answers_go_as_send_sends_them():
    received, lines, states, returned = assert_same(hello, GET % b"a" + GET % b"b" + LAST)
    assert received.count(b"HTTP/1.1 200 OK") == 3 and b"hello /last" in received and lines == []
    assert returned == ["Sent"] * 6  # (every message sent by the C: done as it is awaited)
    assert [s["_state"] for s in states] == [exchange_module.DONE] * 3 and all(s["_body_ended"] for s in states)


def body(**message):
    return {"type": "http.response.body", **message}


@pytest.mark.parametrize("messages,compiled", [
    ([OK, body(body=b"one", more_body=True), body(body=b"two")], ["Sent", "coroutine", "coroutine"]),
    ([OK, body(body=bytearray(b"array"))], ["Sent", "coroutine"]),
    ([OK, body(body=memoryview(b"view"))], ["Sent", "coroutine"]),
    ([OK, body()], ["Sent", "Sent"]),
    ([OK, body(body=b"zero", more_body=0)], ["Sent", "coroutine"]),
    ([OK, body(body=b"x"), body(body=b"after the end")], ["Sent", "Sent", "coroutine"]),
    ([{**OK, "headers": [[b"content-type", b"text/plain"]]}, body(body=b"lists")], ["Sent", "Sent"]),
    ([{**OK, "headers": [("content-type", "text/plain")]}, body(body=b"str")], ["coroutine"]),
    ([{**OK, "headers": ((b"x-a", b"1"),)}, body(body=b"tuple")], ["Sent", "Sent"]),
    ([{**OK, "status": 99}, body(body=b"")], ["coroutine"]),
    ([{**OK, "status": "200"}, body(body=b"")], ["coroutine"]),
    ([{**OK, "status": True}, body(body=b"")], ["coroutine"]),
    ([{"type": "http.response.start"}], ["coroutine"]),
    ([{**OK, "trailers": True}, body(body=b"t"), {"type": "http.response.trailers", "headers": [(b"x", b"y")]}],
     ["coroutine", "coroutine", "coroutine"]),
    ([{**OK, "trailers": False}, body(body=b"no trailers")], ["Sent", "Sent"]),
    ([body(body=b"no start")], ["coroutine"]),
    ([{**OK, "type": "http.response.bogus"}], ["coroutine"]),
    ([OK, OK], ["Sent", "coroutine"]),
    ([{**OK, "headers": [(b"content-length", b"3")]}, body(body=b"longer")], ["Sent"]),
    ([{**OK, "headers": [(b"content-length", b"9")]}, body(body=b"short")], ["Sent"]),
    ([{**OK, "headers": [(b"bad\n", b"x")]}], []),  # (raised as it is called: nothing returned)
], ids=["streamed", "bytearray", "memoryview", "empty", "more-0", "after-end", "lists", "str-headers",
        "tuple-headers", "status-99", "status-str", "status-bool", "no-status", "trailers", "no-trailers",
        "body-first", "bogus", "start-twice", "longer", "shorter", "bad-header"])
def test_every_message_goes_as_send_sends_it(messages, compiled):
    async def app(scope, receive, send):
        for message in messages:
            await send(message)

    received, lines, states, returned = assert_same(app, GET % b"x" + LAST)
    assert returned[:len(compiled)] == compiled  # (the first request's: which way each went)


class Mapping(dict):
    """Not exactly a dict: send takes it its own way."""


def test_a_message_of_another_type_goes_to_send():
    async def app(scope, receive, send):
        await send(Mapping(OK))
        await send(Mapping(body(body=b"mapped")))

    received, lines, states, returned = assert_same(app, GET % b"x" + LAST)
    assert received.count(b"mapped") == 2 and returned[:2] == ["coroutine", "coroutine"]


def test_a_head_request_and_a_request_body_go_as_send_sends_them():
    async def app(scope, receive, send):
        if scope["path"] == "/read":
            message = await receive()
            assert message["body"] == b"12345"
        await send(OK)
        await send(body(body=b"answer"))

    requests = (b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"
                b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n12345"
                b"POST /unread HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n67890" + LAST)
    received, lines, states, returned = assert_same(app, requests)
    assert [r.status for r in parse_responses(received, )[:1]] == [200] and received.count(b"answer") == 3
    assert [s["_body"] for s in states] == [None, (True, 0), (True, 0), None]  # (ended: the unread body dropped)
    assert returned == ["Sent"] * 8


class Waiting(ASGIServerHttpProtocol):
    """A connection whose send_response asks the app to wait for a drain, always (answer_whole
    declines it: it replaces send_response)."""

    __slots__ = ()
    drains = 0

    def send_response(self, *args, **kwargs):
        super().send_response(*args, **kwargs)
        return True

    async def drain(self):
        Waiting.drains += 1
        await super().drain()


def test_a_whole_answer_the_connection_says_to_wait_for_is_drained():
    Waiting.drains = 0
    received, lines, states, returned = assert_same(hello, GET % b"a" + LAST, protocol_class=Waiting)
    assert returned == ["Sent", "coroutine"] * 2 and Waiting.drains == 4  # (the second: the drain)
    assert received.count(b"hello") == 2 and lines == []


class OwnHeads(ASGIServerHttpProtocol):
    """A connection that replaces response_head (keeping what it makes): the C calls it."""

    __slots__ = ()
    made = []

    def response_head(self, request, status, reason, fields, body_size=None, close=False, normalise=None):
        OwnHeads.made.append((status, fields, normalise is not None))
        return super().response_head(request, status, reason, fields, body_size, close, normalise)


def test_a_connection_that_replaces_response_head_has_it_called():
    OwnHeads.made = []
    received, lines, states, returned = assert_same(hello, GET % b"a" + LAST, protocol_class=OwnHeads)
    assert returned == ["Sent"] * 4 and received.count(b"hello") == 2
    assert OwnHeads.made == [(200, ((b"content-type", b"text/plain"),), True)] * 4  # (two servers, two each)


@pytest.mark.parametrize("requests", [
    GET % b"kept" + GET % b"again" + LAST,
    b"GET /old HTTP/1.0\r\n\r\n",
    b"GET /old-kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + LAST,
    GET % b"get" + b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n" * 2 + LAST,
], ids=["1.1", "1.0", "1.0-kept", "head"])
def test_heads_made_and_cached_go_as_response_head_makes_them(requests):
    """Heads made, and the cache's hits (a head asked for again on the connection)."""

    async def app(scope, receive, send):
        await send({**OK, "headers": [(b"content-length", b"2")]})
        await send(body(body=b"ok"))

    received, lines, states, returned = assert_same(app, requests)
    assert received.count(b"HTTP/1.") == requests.count(b"HTTP/1.")


def test_what_send_returns_is_a_coroutine_asyncio_takes():
    async def app(scope, receive, send):
        sent = send(OK)
        assert isinstance(sent, Coroutine)
        await asyncio.get_running_loop().create_task(sent)
        await asyncio.ensure_future(send(body(body=b"by a task")))

    received, lines, states, returned = assert_same(app, GET % b"x" + LAST)
    assert received.count(b"by a task") == 2 and lines == []


def test_send_after_the_client_left_raises_as_send_raises():
    async def app(scope, receive, send):
        while (await receive())["type"] != "http.disconnect":
            pass
        await send(OK)

    async def main(exchange_class):
        made = protocol_module.HttpExchange
        exchanges = []
        protocol_module.HttpExchange = lambda *args: exchanges.append(exchange_class(*args)) or exchanges[-1]
        try:
            loop = asyncio.get_running_loop()
            log = KeptLog()
            protocol = ASGIServerHttpProtocol(ASGIConfig(app=app, log=log), ServerConfig(log=log, keepalive=5),
                                              loop=loop)
            client = await connected(protocol)
            await loop.sock_sendall(client, GET % b"gone")
            await wait_for(lambda: exchanges)
            protocol.transport.abort()  # (lost: the exchange detached)
            client.close()
            await wait_for(lambda: exchanges[0].task.done())
            return log.lines, exchange_state(exchanges[0])
        finally:
            protocol_module.HttpExchange = made

    compiled = uvloop.run(main(HttpExchange))
    reference = uvloop.run(main(Reference))
    assert compiled == reference
    assert compiled[1]["_detached"] and compiled[0][0][0] == "debug" and "ClientDisconnected" in compiled[0][0][1]
