"""``run_exchange`` (_exchange.c): a WSGI exchange's ``run``, compiled, and ``run`` itself, its
reference, which runs for a subclass of the exchange or where gunicorn's request hooks are set.

Each case serves the same app and requests on two WSGI connections over real socket pairs under
uvloop: one whose exchanges are ``WSGIExchange``'s own (the C runs them), one whose exchanges are
of a subclass that only notes each ``run`` (the C declines them). The two must put the same bytes
on the wire (the Date field masked), log the same, close the same iterables and inputs, and leave
their exchanges in the same state.
"""

import asyncio
import re
import socket
import threading

import pytest
import uvloop

from helpers import KeptLog, parse_responses, wait_until
from server.protocol.accesslog import RequestHooks
from server.protocol.server import ServerConfig
from server.wsgi import exchange as exchange_module
from server.wsgi.environ import base_environ
from server.wsgi.exchange import WSGIExchange
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIServerHttpProtocol

pytestmark = pytest.mark.skipif(exchange_module.run_exchange is None,
                                reason="the compiled helpers are not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)")
GET = b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n"
LAST = b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
STATE = ("_status", "_headers", "_handed", "_head_handed", "_aborted", "_final", "_lease", "_body")


class Noted(WSGIExchange):
    """The reference: an exchange of a subclass, whose ``run`` (noted) is WSGIExchange's."""

    __slots__ = ()
    runs = []

    def run(self, wsgi_input, content_length):
        Noted.runs.append(self.head.path)
        super().run(wsgi_input, content_length)


def exchange_state(exchange) -> dict:
    state = {name: getattr(exchange, name) for name in STATE}
    for name in ("_final", "_lease", "_body"):  # (objects of their own on each side: their kinds)
        state[name] = None if state[name] is None else type(state[name]).__name__
    state["_response"] = type(exchange._response).__name__
    state["_environ"] = None if exchange._environ is None else sorted(exchange._environ)
    return state


def serve(app, requests: bytes, reference: bool, hooks=None, leave_early=None) -> tuple:
    """Serve ``requests`` on one connection; what the client read, what was logged, the state of
    each exchange once the connection ended, and the paths of the runs of the reference."""
    exchanges = []
    Noted.runs.clear()

    class Keeping(ThreadPool):
        """The pool, keeping each exchange it is given to run."""

        def submit(self, fn, *args):
            for exchange in (getattr(fn, "__self__", None), *args[:1]):  # (run's, or run_exchange's)
                if isinstance(exchange, WSGIExchange):
                    exchanges.append(exchange)
            super().submit(fn, *args)

    async def main():
        loop = asyncio.get_running_loop()
        log = KeptLog()
        pool = Keeping(loop, 2)
        wsgi = WSGIConfig(app=app, pool=pool, log=log,
                          environ=base_environ(multithread=True, multiprocess=False, file_wrapper=FileWrapper))
        wsgi.exchange_template = (Noted if reference else WSGIExchange).template(wsgi)
        protocol = WSGIServerHttpProtocol(wsgi, ServerConfig(log=log, hooks=hooks), loop=loop)
        ours, theirs = socket.socketpair()
        await loop.connect_accepted_socket(lambda: protocol, ours)
        theirs.setblocking(False)
        await loop.sock_sendall(theirs, requests)
        if leave_early is not None:  # (the connection lost while the app runs: a WSGI connection reads
            await asyncio.to_thread(wait_until, lambda: exchanges, 5)  # nothing then), and the app let go on
            protocol.transport.abort()
            theirs.close()
            await asyncio.to_thread(wait_until, lambda: protocol.transport is None, 5)  # (lost: the exchange
            leave_early.set()  # aborted by connection_lost)
            await asyncio.to_thread(wait_until, lambda: exchanges and exchanges[0]._status and not pool.busy(), 5)
            received = b""
        else:
            received = b""
            while chunk := await asyncio.wait_for(loop.sock_recv(theirs, 65536), 5):
                received += chunk
            theirs.close()
        await asyncio.to_thread(wait_until, lambda: protocol.transport is None, 5)
        # (the last answer's thread done, and its loop calls run)
        await asyncio.to_thread(wait_until, lambda: not pool.busy() and not pool.waiting()[0], 5)
        await asyncio.to_thread(wait_until, lambda: not pool._calls, 5)
        pool.shutdown()
        return received, log.lines + [("answered", f"{len(wsgi.answers)} of {wsgi.dispatched}")]

    received, lines = uvloop.run(main())
    states = [exchange_state(e) for e in exchanges]
    return re.sub(rb"Date: [^\r]*", b"Date: -", received), lines, states, list(Noted.runs)


def answers(received: bytes) -> list:
    """The answers in ``received``, a streamed body's pieces joined (how the loop takes them
    together depends on when it looks)."""
    return [(r.status, [f for f in r.headers if f[0] != "Date"], r.body) for r in parse_responses(received)]


def assert_same(app, requests: bytes, **kwargs) -> tuple:
    compiled = serve(app, requests, False, **kwargs)
    reference = serve(app, requests, True, **kwargs)
    if b"Transfer-Encoding" in compiled[0]:
        assert answers(compiled[0]) == answers(reference[0])
    else:
        assert compiled[0] == reference[0]
    assert compiled[1:3] == reference[1:3]
    return compiled, reference


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + environ["PATH_INFO"].encode()]


class Closing(list):
    """A list with a close(), noted."""

    closed = []

    def close(self):
        Closing.closed.append(self[0])


def test_whole_answers_go_as_run_sends_them():
    (received, lines, states, runs), reference = assert_same(hello, GET % b"a" + GET % b"b" + LAST)
    assert lines == [("answered", "1 of 1")]  # (the last, alone: every one before was answered)
    assert received.count(b"HTTP/1.1 200 OK") == 3 and received.endswith(b"hello /last")
    assert runs == [] and reference[3] == ["/a", "/b", "/last"]  # (the C ran the first, run the second)
    assert [s["_handed"] for s in states] == [8, 8, 11] and all(s["_final"] is None for s in states)
    assert all(s["_response"] == "Head" and s["_environ"] for s in states)


@pytest.mark.parametrize("result", [
    lambda: [b"one", b"two"], lambda: (b"tuple",), list, lambda: [b""], lambda: Closing([b"closed"]),
    lambda: iter([b"a", b"b"]), lambda: [bytearray(b"ba")], lambda: ["text"],
], ids=["pieces", "tuple", "empty", "empty-piece", "closing", "iterator", "bytearray", "text"])
def test_every_other_result_goes_as_run_sends_it(result):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return result()

    Closing.closed.clear()
    (received, lines, states, runs), _ = assert_same(app, GET % b"x" + LAST)
    assert Closing.closed == ([b"closed"] * 4 if type(result()) is Closing else [])  # two requests, two servers
    if result() == ["text"]:
        assert received.count(b"500 Internal Server Error") == 2 and lines[0][0] == "exception"
        assert lines[1] == ("handling", "TypeError('response body pieces must be bytes, not str')")


@pytest.mark.parametrize("headers,request_", [
    ([("Content-Length", "3")], GET % b"longer"),  # cut to its declared length, and logged
    ([("Content-Length", "50")], GET % b"shorter"),
    ([], b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n"),  # no body
])
def test_a_declared_length_or_a_head_request_goes_as_run_sends_it(headers, request_):
    def app(environ, start_response):
        start_response("200 OK", list(headers))
        return [b"the body of " + environ["PATH_INFO"].encode()]

    (received, lines, states, _), _ = assert_same(app, request_ + LAST)
    if headers == [("Content-Length", "3")]:
        assert b"\r\n\r\nthe" in received and ("warning", "Response to GET /longer longer than its Content-Length: "
                                                          "truncated") in lines
        assert states[0]["_handed"] == 3


def test_a_failing_app_or_no_start_response_gets_a_500_as_run_gives_it():
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/raise":
            raise ValueError("broken")
        if environ["PATH_INFO"] == "/after":
            start_response("200 OK", [])
            raise ValueError("after start_response")
        return [b"no start_response"]

    (received, lines, states, _), _ = assert_same(app, GET % b"raise" + GET % b"after" + LAST)
    assert received.count(b"500 Internal Server Error") == 3
    assert [level for level, _ in lines] == ["exception", "handling"] * 3 + ["answered"]
    assert lines[1] == ("handling", "ValueError('broken')")
    assert states[0]["_status"] == "500 Internal Server Error"


def test_a_body_is_read_and_its_input_closed_as_run_does():
    inputs = []

    def app(environ, start_response):
        inputs.append(environ["wsgi.input"])
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    post = b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    (received, _, states, _), _ = assert_same(app, post + LAST)
    assert received.split(b"\r\n\r\n")[1].startswith(b"hello")
    assert inputs[0]._pieces == [] and inputs[2]._pieces == []  # closed: the C's, the reference's


def test_a_client_gone_before_the_answer_is_logged_as_run_logs_it():
    """The client leaves while the app runs: the answer is refused (ClientDisconnected) and only
    noted in the debug log."""
    def app(environ, start_response):
        gone.wait(5)
        start_response("200 OK", [])
        return [b"too late"]

    gone = threading.Event()

    def run(reference):
        gone.clear()
        return serve(app, GET % b"slow", reference, leave_early=gone)

    compiled, reference = run(False), run(True)
    assert compiled[:3] == reference[:3]
    assert compiled[1] == [("debug", "Client disconnected during the response to GET /slow"), ("answered", "1 of 1")]
    assert compiled[2][0]["_aborted"] is True and reference[3] == ["/slow"]


def test_with_request_hooks_run_runs_itself():
    """gunicorn's pre_request and post_request: the C hands the exchange to run, which calls them."""
    called = []
    hooks = RequestHooks(pre_request=lambda worker, req: called.append(("pre", req.path)),
                         post_request=lambda worker, req, environ, resp: called.append(("post", resp.status)))

    original = WSGIExchange.run
    runs = []

    def noted_run(self, wsgi_input, content_length):
        runs.append(self.head.path)
        original(self, wsgi_input, content_length)

    WSGIExchange.run = noted_run
    try:
        received, lines, states, _ = serve(hello, GET % b"h" + LAST, False, hooks=hooks)
    finally:
        WSGIExchange.run = original
    assert runs == ["/h", "/last"]
    assert called == [("pre", "/h"), ("post", "200 OK"), ("pre", "/last"), ("post", "200 OK")]
    assert received.count(b"200 OK") == 2
