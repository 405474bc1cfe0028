"""A new connection is served on its accepted socket until it needs the loop (accepted.py).

``AcceptedTransport`` on real loopback TCP sockets (asyncio and uvloop): what it writes and
closes itself, what waits for the loop's transport and goes to it in order, its flow
control meanwhile; ``FirstBytes``; and ``Listeners`` serving real ASGI connections so:
the ones that never get a loop's transport, the ones handed over, and when.
"""

import asyncio
import socket
import time

import pytest

from helpers import acknowledged, read_response, read_until_eof, run_on_loop, slots_of, tcp_ends, wait_for
from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol.server import ServerConfig
from server.workers import listeners as listeners_module
from server.workers.accepted import PENDING_HIGH_WATER, AcceptedTransport, FirstBytes
from server.workers.listeners import Listeners
from server.wsgi.environ import base_environ
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIServerHttpProtocol

LOOPS = ["asyncio", "uvloop"]
BIG = 8 * 1024 * 1024  # more than loopback socket buffers take without the client reading


class Recorder(asyncio.Protocol):
    """Keeps what a transport tells it."""

    def __init__(self):
        self.lost = []
        self.received = bytearray()
        self.paused = 0
        self.resumed = 0
        self.handed = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.received += data

    def connection_lost(self, exc):
        self.lost.append(exc)

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1

    def transport_handed_over(self, transport):
        self.handed.append(transport)
        self.transport = transport

    def needs_reading(self):
        return False


def handing_over(loop, handed: list):
    """A ``hand_to_loop`` for ``AcceptedTransport``: the loop makes its transport (as the
    listener does, as a task here), and ``handed`` counts the times."""

    def hand(sock, factory, failed):
        handed.append(sock)
        task = loop.create_task(loop.connect_accepted_socket(factory, sock))
        task.add_done_callback(lambda t: t.exception() is not None and failed(t.exception()))

    return hand


def accepted_over(loop, protocol, handed: list, first_bytes=None, read_once=True):
    server, client = tcp_ends()
    peer, local = client.getsockname(), server.getsockname()
    transport = AcceptedTransport(loop, server.detach(), protocol, peer, local,
                                  handing_over(loop, handed), first_bytes, read_once)
    protocol.connection_made(transport)
    return transport, client


@pytest.mark.parametrize("loop_name", LOOPS)
def test_what_the_socket_takes_is_written_and_the_close_needs_no_loop_transport(loop_name):
    async def main(loop):
        protocol, handed = Recorder(), []
        transport, client = accepted_over(loop, protocol, handed)
        transport.write(b"hello ")
        transport.writelines([b"wor", b"ld"])
        assert transport.get_write_buffer_size() == 0
        transport.close()
        assert transport.is_closing()
        transport.write(b"dropped")  # (after the close: nothing)
        await wait_for(lambda: protocol.lost)
        data, ended = read_until_eof(client)
        client.close()
        return data, ended, protocol.lost, handed

    assert run_on_loop(loop_name, main) == (b"hello world", True, [None], [])


@pytest.mark.parametrize("loop_name", LOOPS)
def test_an_abort_resets_the_client(loop_name):
    async def main(loop):
        protocol, handed = Recorder(), []
        transport, client = accepted_over(loop, protocol, handed)
        transport.abort()
        await wait_for(lambda: protocol.lost)
        with client, pytest.raises(ConnectionResetError):
            client.recv(10)
        return protocol.lost, handed

    assert run_on_loop(loop_name, main) == ([None], [])


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_write_the_socket_does_not_take_whole_goes_to_the_loop_transport_with_what_follows(loop_name):
    """The rest waits for the loop's transport, with what is written meanwhile; the protocol
    is paused for writing past the high-water mark, resumed as the bytes go to the loop's
    transport; a close asked meanwhile comes after them."""
    body = bytes(range(256)) * (BIG // 256)

    async def main(loop):
        protocol, handed = Recorder(), []
        transport, client = accepted_over(loop, protocol, handed)
        transport.write(body)
        transport.write(b"tail")
        waiting = transport.get_write_buffer_size()
        paused_before = protocol.paused
        transport.close()
        await wait_for(lambda: protocol.handed)
        data, ended = await loop.run_in_executor(None, read_until_eof, client, 20)
        await wait_for(lambda: protocol.lost)
        client.close()
        return (data == body + b"tail", ended, len(handed), waiting > PENDING_HIGH_WATER, paused_before,
                protocol.resumed >= 1, protocol.lost)

    assert run_on_loop(loop_name, main) == (True, True, 1, True, 1, True, [None])


@pytest.mark.parametrize("loop_name", LOOPS)
def test_reading_again_hands_the_connection_over(loop_name):
    async def main(loop):
        protocol, handed = Recorder(), []
        transport, client = accepted_over(loop, protocol, handed)
        transport.pause_reading()
        transport.resume_reading()  # (the protocol wants input: the loop's transport reads)
        await wait_for(lambda: protocol.handed)
        client.sendall(b"more")
        await wait_for(lambda: protocol.received == b"more")
        assert transport.get_extra_info("peername") == client.getsockname()
        transport.close()  # (through the loop's transport now)
        await wait_for(lambda: protocol.lost)
        client.close()
        return len(handed), protocol.handed[0] is not transport

    assert run_on_loop(loop_name, main) == (1, True)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_file_body_waits_for_the_loop_transport(loop_name):
    async def main(loop):
        protocol, handed = Recorder(), []
        transport, client = accepted_over(loop, protocol, handed)
        loop_transport = await transport.loop_transport()
        again = await transport.loop_transport()
        loop_transport.close()
        await wait_for(lambda: protocol.lost)
        client.close()
        return len(handed), loop_transport is protocol.handed[0], again is loop_transport

    assert run_on_loop(loop_name, main) == (1, True, True)


def failing_at_once(reason: OSError):
    """A ``hand_to_loop`` whose loop cannot make the transport, and says so before it returns
    (the listener steps ``connect_accepted_socket`` at once: it may fail in that step)."""

    def hand(sock, factory, failed):
        failed(reason)

    return hand


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_hand_over_failing_at_once_loses_the_connection_cleanly(loop_name):
    """A write the socket does not take whole, and a file body's wait for the loop's
    transport, both while the hand-over fails at once: the connection is lost (the
    protocol told, the client's end closed), nothing raises but the file body's wait."""
    async def main(loop):
        results = []
        for use in ("write", "loop_transport"):
            protocol = Recorder()
            server, client = tcp_ends()
            reason = OSError("no transport")
            transport = AcceptedTransport(loop, server.detach(), protocol, None, None, failing_at_once(reason))
            protocol.connection_made(transport)
            if use == "write":
                transport.write(b"x" * BIG)
                transport.write(b"more")
                outcome = transport.is_closing()
            else:
                try:
                    await asyncio.wait_for(transport.loop_transport(), 5)
                except ConnectionResetError:
                    outcome = "reset"
            await wait_for(lambda: protocol.lost)
            data, ended = await loop.run_in_executor(None, read_until_eof, client, 5)
            client.close()
            results.append((use, outcome, protocol.lost == [reason], ended, protocol.handed))
        return results

    assert run_on_loop(loop_name, main) == [("write", True, True, True, []),
                                            ("loop_transport", "reset", True, True, [])]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_first_bytes_are_read_once_then_the_protocol_decides(loop_name):
    """A client silent at accept: its first bytes are read here; a protocol that then needs
    nothing more keeps the socket; one that does is handed to the loop."""

    class Served(Recorder):
        def needs_reading(self):
            return not self.received  # (a whole request in the first bytes)

    class Needing(Recorder):
        def needs_reading(self):
            return True

    async def main(loop):
        first_bytes = FirstBytes(loop)
        results = []
        for protocol in (Served(), Needing()):
            handed = []
            transport, client = accepted_over(loop, protocol, handed, first_bytes, read_once=False)
            transport.settle()
            watched = first_bytes._callbacks.get(transport.get_extra_info("socket").fileno())
            silent = bytes(protocol.received)
            client.sendall(b"request")
            await wait_for(lambda: protocol.received == b"request")
            # (the decision is taken in the same callback as the read: handed is final)
            results.append((watched is not None, silent, len(handed)))
            transport.close()
            await wait_for(lambda: protocol.lost)
            client.close()
        return results

    assert run_on_loop(loop_name, main) == [(True, b"", 0), (True, b"", 1)]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_client_leaving_silent_is_closed_without_the_loop_transport(loop_name):
    class Ending(Recorder):
        def needs_reading(self):
            return True

        def eof_received(self):
            self.eof = True

    async def main(loop):
        first_bytes = FirstBytes(loop)
        protocol, handed = Ending(), []
        transport, client = accepted_over(loop, protocol, handed, first_bytes, read_once=False)
        transport.settle()
        client.close()
        await wait_for(lambda: protocol.lost)
        return protocol.eof, protocol.lost, handed, first_bytes._callbacks

    assert run_on_loop(loop_name, main) == (True, [None], [], {})


@pytest.mark.parametrize("loop_name", LOOPS)
def test_first_bytes_calls_once_and_not_after_unwatch(loop_name):
    async def main(loop):
        first_bytes = FirstBytes(loop)
        a_server, a_client = tcp_ends()
        b_server, b_client = tcp_ends()
        calls = []
        first_bytes.watch(a_server.fileno(), lambda: calls.append("a"))
        first_bytes.watch(b_server.fileno(), lambda: calls.append("b"))
        first_bytes.unwatch(b_server.fileno())
        a_client.sendall(b"x")
        b_client.sendall(b"x")
        await wait_for(lambda: calls)
        a_client.sendall(b"y")  # (still readable: no second call)
        await asyncio.sleep(0.05)
        for s in (a_server, a_client, b_server, b_client):
            s.close()
        return calls

    assert run_on_loop(loop_name, main) == ["a"]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_first_bytes_watches_a_descriptor_again_after_it_told(loop_name):
    """Its registrations are one-shot, and stay (spent) until the descriptor is closed: the
    same open descriptor watched again is armed again (a wake-up that found nothing to read),
    and a new socket given a closed one's number is watched as any other."""
    async def main(loop):
        first_bytes = FirstBytes(loop)
        calls = []
        server, client = tcp_ends()
        first_bytes.watch(server.fileno(), lambda: calls.append("first"))
        client.sendall(b"x")
        await wait_for(lambda: calls)
        first_bytes.watch(server.fileno(), lambda: calls.append("again"))
        await wait_for(lambda: len(calls) == 2)  # (still readable: told at once)
        number = server.fileno()
        server.close()
        client.close()
        other_server, other_client = tcp_ends()
        assert other_server.fileno() == number  # (the lowest free descriptor)
        first_bytes.watch(other_server.fileno(), lambda: calls.append("other"))
        probe_server, probe_client = tcp_ends()  # (readable at once: told on the next poll)
        probe_client.sendall(b"p")
        first_bytes.watch(probe_server.fileno(), lambda: calls.append("probe"))
        await wait_for(lambda: "probe" in calls)
        silent = list(calls)  # (a stale registration would have told on that poll too)
        other_client.sendall(b"y")
        await wait_for(lambda: "other" in calls)
        for s in (other_server, other_client, probe_server, probe_client):
            s.close()
        return silent, calls

    assert run_on_loop(loop_name, main) == (["first", "again", "probe"], ["first", "again", "probe", "other"])


# -- Listeners serving ASGI connections on their sockets ---------------------------------


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class Counted(ASGIServerHttpProtocol):
    """An ASGI connection that counts its hand-overs to the loop's transport."""

    handed_over: list = []
    made_on: list = []  # the type of the transport each connection was made on

    def connection_made(self, transport):
        Counted.made_on.append(type(transport))
        super().connection_made(transport)

    def transport_handed_over(self, transport):
        Counted.handed_over.append(self)
        super().transport_handed_over(transport)


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


def serving(loop, listening, app=hello, backlog=128):
    Counted.handed_over = []
    Counted.made_on = []
    asgi = ASGIConfig(app=app, log=QuietLog())
    config = ServerConfig(log=QuietLog(), keepalive=5)
    return Listeners(loop, [listening], lambda: Counted(asgi, config, loop=loop), backlog=backlog,
                     read_early=True, on_socket=True)


@pytest.fixture
def listening():
    sock = socket.create_server(("127.0.0.1", 0), backlog=128)
    sock.setblocking(False)  # (as watching makes it: some tests accept without)
    yield sock
    sock.close()


CLOSING = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
KEPT = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.mark.parametrize("loop_name", LOOPS)
def test_closing_requests_are_answered_without_a_loop_transport_kept_alive_ones_are_handed_over(
        listening, loop_name):
    port = listening.getsockname()[1]

    async def main(loop):
        listeners = serving(loop, listening)
        await listeners.start()
        closing = socket.create_connection(("127.0.0.1", port))
        closing.sendall(CLOSING)  # (before the accept: read with it)
        late = socket.create_connection(("127.0.0.1", port))  # (silent at accept)
        kept = socket.create_connection(("127.0.0.1", port))
        kept.sendall(KEPT)
        await asyncio.sleep(0.1)
        late.sendall(CLOSING)
        answers = [await loop.run_in_executor(None, read_until_eof, s) for s in (closing, late)]
        first = await loop.run_in_executor(None, read_response, kept)
        kept.sendall(KEPT)  # (read by the loop's transport)
        second = await loop.run_in_executor(None, read_response, kept)
        handed = len(Counted.handed_over)
        listeners.close()
        for s in (closing, late, kept):
            s.close()
        await asyncio.sleep(0.05)
        return [(data.endswith(b"hello"), ended) for data, ended in answers], first.body, second.body, handed

    assert run_on_loop(loop_name, main) == ([(True, True), (True, True)], b"hello", b"hello", 1)  # (the kept one)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_request_incomplete_at_accept_is_read_by_the_loop_transport(listening, loop_name):
    port = listening.getsockname()[1]

    async def main(loop):
        listeners = serving(loop, listening)
        await listeners.start()
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(CLOSING[:20])
        await wait_for(lambda: Counted.handed_over)
        client.sendall(CLOSING[20:])
        data, ended = await loop.run_in_executor(None, read_until_eof, client)
        listeners.close()
        client.close()
        return data.endswith(b"hello"), ended, len(Counted.handed_over)

    assert run_on_loop(loop_name, main) == (True, True, 1)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_at_most_served_per_pass_clients_are_served_in_one_pass(listening, loop_name):
    port = listening.getsockname()[1]
    count = listeners_module.SERVED_PER_PASS + 8

    async def main(loop):
        listeners = serving(loop, listening)
        clients = []
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(CLOSING)
            clients.append(client)
        await asyncio.sleep(0.05)  # (every request is in before the accept)
        listeners._state = "serving"
        loop.call_soon(listeners._accept, listening)  # one readiness event, as the loop calls it
        await asyncio.sleep(0)
        served = [c for c in clients if read_until_eof(c, 0.2)[1]]
        await listeners.start()  # (the rest on the next passes)
        rest = await loop.run_in_executor(None, lambda: [read_until_eof(c)[1] for c in clients if c not in served])
        listeners.close()
        for c in clients:
            c.close()
        return len(served), rest.count(True)

    assert run_on_loop(loop_name, main) == (listeners_module.SERVED_PER_PASS, 8)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_catch_up_in_a_task_serves_the_waiting_clients_after_its_step(listening, loop_name, monkeypatch):
    """A request ending in its app's task may ask the listener to catch up: the clients
    waiting are served on their sockets once the task's step is over (an eager first step
    of theirs cannot run inside it), in the same pass of the loop."""
    port = listening.getsockname()[1]
    monkeypatch.setattr(listeners_module, "CATCH_UP_INTERVAL", 0.0)

    async def main(loop):
        listeners = serving(loop, listening)
        listeners._state = "serving"
        listeners._watching = True  # (as if watching, with no readiness event: only catch_up accepts)
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(CLOSING)
        await asyncio.sleep(0.05)
        listeners.catch_up()  # (in this task)
        in_the_step = read_until_eof(client, 0.05)[1]
        await asyncio.sleep(0)
        data, ended = await loop.run_in_executor(None, read_until_eof, client)
        listeners.close()
        client.close()
        return in_the_step, data.endswith(b"hello"), ended, Counted.handed_over

    assert run_on_loop(loop_name, main) == (False, True, True, [])


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_catch_up_waiting_for_its_task_step_is_not_asked_again_until_it_runs(listening, loop_name):
    """Once a catch-up waits for the task's step to end, the worker's test before each call
    (``loop.time() > catch_up_after``) fails for the other requests the pass ends; the look
    that runs after the step starts the interval again."""

    async def main(loop):
        listeners = serving(loop, listening)
        listeners._state = "serving"
        listeners._watching = True  # (as if watching: only catch_up accepts)
        listeners.catch_up_after = loop.time() - 1  # (as if a long pass had run)
        listeners.catch_up()  # (in this task: deferred)
        asked_again = loop.time() > listeners.catch_up_after
        before = loop.time()
        after_it = loop.create_future()
        loop.call_soon(after_it.set_result, None)  # (callbacks run in order: this one after the catch-up)
        await after_it
        interval = listeners_module.CATCH_UP_INTERVAL
        started_then = before + interval <= listeners.catch_up_after <= loop.time() + interval
        listeners.close()
        return asked_again, started_then

    assert run_on_loop(loop_name, main) == (False, True)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_graceful_close_takes_the_clients_waiting_then_not_their_next_connections(listening, loop_name):
    """A graceful stop takes the clients already in the accept queue and closes the listening
    socket before it serves them: a client answered at once and connecting again (here, as
    its connection is made) waits for the next worker, in the queue the master keeps."""
    port = listening.getsockname()[1]
    masters_copy = listening.dup()
    again = []

    def connecting_again():
        again.append(socket.create_connection(("127.0.0.1", port)))
        again[-1].sendall(CLOSING)
        return Counted(ASGIConfig(app=hello, log=QuietLog()), ServerConfig(log=QuietLog()), loop=loop)

    async def main(running):
        nonlocal loop
        loop = running
        listeners = Listeners(loop, [listening], connecting_again, backlog=128, read_early=True, on_socket=True)
        await listeners.start()
        listeners.pause()  # (the first client waits in the queue: its connect returns once it does)
        first = socket.create_connection(("127.0.0.1", port))
        first.sendall(CLOSING)  # (read at accept or after: answered either way)
        loop.call_soon(listeners.close)  # (as a request ends: a callback of the loop, not a task)
        data, ended = await loop.run_in_executor(None, read_until_eof, first)
        left = []
        while True:
            try:
                left.append(masters_copy.accept()[0])
            except BlockingIOError:
                break
        for s in [first, masters_copy, *again, *left]:
            s.close()
        return data.endswith(b"hello"), ended, len(again), len(left)

    loop = None
    assert run_on_loop(loop_name, main) == (True, True, 1, 1)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_graceful_close_asked_in_a_task_hands_its_waiting_clients_to_the_loop(listening, loop_name):
    """A graceful stop asked in a task (an app's request reaching max_requests): a waiting
    client served on its socket there would take its request's first step inside that task's
    step, which asyncio refuses. Each is handed to the loop instead, and answered."""
    port = listening.getsockname()[1]

    async def main(loop):
        listeners = serving(loop, listening)
        await listeners.start()
        listeners.pause()  # (the client waits in the queue: its connect returns once it does)
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(CLOSING)
        await wait_for(lambda: acknowledged(client))  # (in its queue: read at accept, as the stop takes it)
        listeners.close()  # (in this task)
        data, ended = await loop.run_in_executor(None, read_until_eof, client)
        client.close()
        return data.endswith(b"hello"), ended, [t is AcceptedTransport for t in Counted.made_on]

    assert run_on_loop(loop_name, main) == (True, True, [False])


class CountedWSGI(WSGIServerHttpProtocol):
    def transport_handed_over(self, transport):
        Counted.handed_over.append(self)
        super().transport_handed_over(transport)


def slow_wsgi(environ, start_response):
    time.sleep(0.2)
    start_response("200 OK", [("Content-Length", "5")])
    return [b"hello"]


async def slow_asgi(scope, receive, send):
    if scope["type"] == "http":
        await asyncio.sleep(0.2)
        await hello(scope, receive, send)


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("kind, handed", [("wsgi", 0), ("asgi", 1)])
def test_while_its_app_runs_a_closing_request_stays_on_its_socket_only_if_its_kind_reads_nothing(
        listening, loop_name, kind, handed):
    """WSGI reads nothing while its app answers a whole request (an app thread cannot be told
    the client left); ASGI listens for the client's leaving (``http.disconnect``), so its
    connection goes to the loop's transport."""
    port = listening.getsockname()[1]

    async def main(loop):
        if kind == "wsgi":
            pool = ThreadPool(loop, 1)
            wsgi = WSGIConfig(app=slow_wsgi, pool=pool, log=QuietLog(),
                              environ=base_environ(multithread=False, multiprocess=False, file_wrapper=FileWrapper))
            config = ServerConfig(log=QuietLog(), keepalive=5)
            Counted.handed_over = []
            listeners = Listeners(loop, [listening], lambda: CountedWSGI(wsgi, config, loop=loop), backlog=128,
                                  read_early=True, on_socket=True)
        else:
            listeners = serving(loop, listening, app=slow_asgi)
        await listeners.start()
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(CLOSING)
        data, ended = await loop.run_in_executor(None, read_until_eof, client)
        listeners.close()
        client.close()
        if kind == "wsgi":
            pool.shutdown()
        return data.endswith(b"hello"), ended, len(Counted.handed_over)

    assert run_on_loop(loop_name, main) == (True, True, handed)


def test_addresses_not_told_at_accept_are_the_sockets_own():
    """A unix socket's client has no address accept tells: its socket's (``''``), as the
    loop's transports give it."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        transport = AcceptedTransport(None, ours.fileno(), Recorder(), None, None, None, socket_of=lambda fd: ours)
        assert (transport.get_extra_info("peername"), transport.get_extra_info("sockname")) == ("", "")
        assert transport.get_extra_info("socket") is ours
        assert transport.get_extra_info("sslcontext", "none") == "none"


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_protocol_failing_on_what_was_read_is_reported_and_its_client_reset(loop_name):
    class Failing(Recorder):
        def data_received(self, data):
            raise ValueError("broken protocol")

    async def main(loop):
        reported = []
        loop.set_exception_handler(lambda loop, context: reported.append(context["exception"]))
        protocol, handed = Failing(), []
        transport, client = accepted_over(loop, protocol, handed)
        transport.serve(protocol.data_received, b"request")
        await wait_for(lambda: protocol.lost)
        with client, pytest.raises(ConnectionResetError):
            client.recv(10)
        return [str(e) for e in reported], protocol.lost, handed

    assert run_on_loop(loop_name, main) == (["broken protocol"], [None], [])


def transport_slots(transport) -> dict:
    return {name: getattr(transport, name, "<unset>") for name in slots_of(AcceptedTransport)}


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_transport_copied_from_a_template_holds_what_one_made_for_its_client_holds(loop_name):
    """A client served on its socket gets a copy of its listener's template transport (one
    compiled call, see protocol/copies.py), with its own descriptor, protocol, peer and first
    read: the same slots as a transport made for it the usual way."""

    async def main(loop):
        hand, first_bytes = handing_over(loop, []), FirstBytes.make(loop)
        local, peer, protocol = ("127.0.0.1", 8000), ("127.0.0.1", 40000), Recorder()
        template = AcceptedTransport(loop, -1, None, None, local, hand, first_bytes, True, str)
        copy = template.copy_for(7, protocol, peer, False)
        usual = AcceptedTransport(loop, 7, protocol, peer, local, hand, first_bytes, False, str)
        return transport_slots(copy) == transport_slots(usual), transport_slots(template)["_fd"]

    assert run_on_loop(loop_name, main) == (True, -1)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_clients_of_one_listener_are_served_on_copies_of_one_template(listening, loop_name):
    port = listening.getsockname()[1]

    async def main(loop):
        listeners = serving(loop, listening)
        await listeners.start()
        answers = []
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(CLOSING)
                answers.append(await loop.run_in_executor(None, read_until_eof, client))
        templates = {id(acceptor.transport_template) for acceptor in listeners._acceptors.values()}
        listeners.close()
        return [data.endswith(b"hello") and ended for data, ended in answers], len(templates), Counted.made_on

    served, templates, made_on = run_on_loop(loop_name, main)
    assert served == [True] * 3 and templates == 1 and made_on == [AcceptedTransport] * 3
