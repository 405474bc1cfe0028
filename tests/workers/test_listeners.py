"""Listeners: every waiting connection is accepted per readiness event; pausing leaves
new clients in the kernel's accept queue; running out of descriptors pauses accepting.

These drive ``Listeners`` on a real loop (uvloop where installed: libuv itself accepts
one connection per loop iteration) with real sockets on 127.0.0.1.
"""

import asyncio
import contextlib
import errno
import os
import resource
import socket

import pytest

from helpers import run_on_loop, wait_for
from server.workers import listeners as listeners_module
from server.workers.listeners import Listeners

LOOPS = ["asyncio"]
try:
    import uvloop  # noqa: F401
except ImportError:
    pass
else:
    LOOPS.append("uvloop")


class Counting(asyncio.Protocol):
    made: list = []

    def connection_made(self, transport):
        Counting.made.append(transport)


def waiting_clients(port: int, n: int) -> list[socket.socket]:
    """``n`` connected clients; the kernel completes their handshakes, so they wait to be accepted."""
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]


@pytest.fixture
def listening():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock
    sock.close()


async def iterations(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def close_all(clients=()) -> None:
    """Close every connection made and every client, and let the loop run their teardown."""
    for transport in Counting.made:
        transport.close()
    for c in clients:
        c.close()
    await iterations(2)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_all_waiting_connections_are_accepted_in_one_readiness_event(listening, loop_name):
    Counting.made = []
    clients = waiting_clients(listening.getsockname()[1], 40)

    async def main(loop):
        listeners = Listeners(loop, [listening], Counting, backlog=128)
        await listeners.start()
        # One iteration runs the accept callback, the next the connection set-ups: a
        # loop that accepted one connection per iteration would have made about 3.
        await iterations(4)
        made = len(Counting.made)
        listeners.close()
        await close_all()
        return made

    try:
        assert run_on_loop(loop_name, main) == 40
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_batch_is_at_most_one_backlog(listening, loop_name):
    Counting.made = []
    clients = waiting_clients(listening.getsockname()[1], 12)

    async def main(loop):
        listeners = Listeners(loop, [listening], Counting, backlog=5)
        await listeners.start()
        listeners._accept(listening)  # one readiness event
        listeners.pause()
        await iterations(3)
        first = len(Counting.made)
        listeners.resume()
        for _ in range(200):
            if len(Counting.made) == 12:
                break
            await asyncio.sleep(0.01)
        listeners.close()
        await close_all()
        return first, len(Counting.made)

    try:
        assert run_on_loop(loop_name, main) == (5, 12)
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_paused_listeners_leave_clients_in_the_accept_queue(listening, loop_name):
    Counting.made = []

    async def main(loop):
        listeners = Listeners(loop, [listening], Counting, backlog=128)
        await listeners.start()
        listeners.pause()
        clients = waiting_clients(listening.getsockname()[1], 3)
        await asyncio.sleep(0.2)
        paused = len(Counting.made), listeners.paused  # (the worker tests the flag before resume())
        listeners.resume()
        paused += (listeners.paused,)
        for _ in range(200):
            if len(Counting.made) == 3:
                break
            await asyncio.sleep(0.01)
        listeners.close()
        resumed = len(Counting.made)
        await close_all(clients)
        return paused, resumed

    assert run_on_loop(loop_name, main) == ((0, True, False), 3)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_accepting_stops_at_the_capacity_and_goes_on_with_the_room_made(listening, loop_name):
    """Ten clients wait at a capacity of three: three are accepted (those being set up count),
    accepting pauses and the owner is told; two connections end, and two more are accepted."""
    Counting.made = []
    ended = [0]
    told = []

    async def main(loop):
        clients = waiting_clients(listening.getsockname()[1], 10)
        listeners = Listeners(loop, [listening], Counting, backlog=128,
                              capacity=(lambda: len(Counting.made) - ended[0], 3),
                              on_full=lambda take: told.append(take) is None and False)
        await listeners.start()
        # (told once the room ran out and a client waits; then each one accepted is made)
        await wait_for(lambda: told and not listeners._setting_up)
        first = (len(Counting.made), listeners._state, len(told))
        ended[0] = 2
        listeners.resume()
        await wait_for(lambda: len(told) == 2 and not listeners._setting_up)
        then = (len(Counting.made), listeners._state)
        listeners.close(take_waiting=False)
        await close_all(clients)
        return first, then

    assert run_on_loop(loop_name, main) == ((3, "paused", 1), (5, "paused"))


@contextlib.contextmanager
def descriptors_used_up():
    """Every descriptor this process may open is taken (its soft limit lowered to a few past
    the highest open one, the rest filled): an accept fails with EMFILE, as in a worker
    out of descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    taken = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 16, hard))
    try:
        while True:
            try:
                taken.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                if exc.errno != errno.EMFILE:
                    raise
                break
        yield
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_out_of_descriptors_pauses_accepting_then_retries(listening, monkeypatch):
    monkeypatch.setattr(listeners_module, "RETRY_AFTER_RESOURCE_ERROR", 0.2)
    clients = waiting_clients(listening.getsockname()[1], 1)  # keeps the socket readable
    errors = []

    async def main(loop):
        loop.set_exception_handler(lambda loop, context: errors.append(context["exception"]))
        listeners = Listeners(loop, [listening], Counting, backlog=128)
        with descriptors_used_up():
            await listeners.start()
            await asyncio.sleep(0.1)  # within the pause: one attempt, not a busy loop
            during = len(errors)
            await asyncio.sleep(0.25)  # past it: watching again, and failing again
            after = len(errors)
            listeners.close(take_waiting=False)
        return during, after

    try:
        during, after = run_on_loop("asyncio", main)
    finally:
        for c in clients:
            c.close()
    assert during == 1
    assert after >= 2
    assert all(e.errno == errno.EMFILE for e in errors)


class Recording(asyncio.Protocol):
    """Keeps every byte it gets, early or not, and when the connection was made."""

    early_data = b""
    made: list = []

    def connection_made(self, transport):
        self.transport = transport
        self.received = bytearray(self.early_data)
        self.early = len(self.early_data)
        Recording.made.append(self)

    def data_received(self, data):
        self.received += data


def _receive_all(loop_name, listening, payloads, read_early=True):
    """Clients send ``payloads`` before they are accepted; what did each protocol get?"""
    Recording.made = []
    port = listening.getsockname()[1]
    clients = waiting_clients(port, len(payloads))
    for client, payload in zip(clients, payloads):
        client.sendall(payload)

    async def main(loop):
        listeners = Listeners(loop, [listening], Recording, backlog=128, read_early=read_early)
        await listeners.start()
        total = sum(map(len, payloads))
        for _ in range(300):
            if len(Recording.made) == len(payloads) and sum(len(p.received) for p in Recording.made) == total:
                break
            await asyncio.sleep(0.01)
        listeners.close()
        got = sorted((bytes(p.received), p.early) for p in Recording.made)
        for p in Recording.made:
            p.transport.close()
        await iterations(2)
        return got

    try:
        return run_on_loop(loop_name, main)
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_bytes_sent_before_the_accept_arrive_once_and_in_order(listening, loop_name):
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    big = bytes(range(256)) * (3 * listeners_module.EARLY_READ // 256 + 7)  # more than one early read
    got = _receive_all(loop_name, listening, [request, big])
    assert [data for data, _ in got] == sorted([request, big])
    early = dict(got)
    assert early[request] == len(request)  # taken at accept, handed over with the connection
    assert 0 < early[big] <= listeners_module.EARLY_READ  # the rest comes by the transport


@pytest.mark.parametrize("loop_name", LOOPS)
def test_protocols_without_early_data_get_every_byte_from_the_transport(listening, loop_name):
    got = _receive_all(loop_name, listening, [b"ping"], read_early=False)
    assert got == [(b"ping", 0)]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_connection_is_made_in_the_loop_pass_that_accepted_it(listening, loop_name):
    """The set-up coroutine's first step runs at accept: connection_made comes in the next
    pass, not two passes later as it would from a task."""
    Recording.made = []
    clients = waiting_clients(listening.getsockname()[1], 3)

    async def main(loop):
        listeners = Listeners(loop, [listening], Recording, backlog=128)
        await listeners.start()
        listeners._accept(listening)  # as a readiness event would
        await iterations(1)
        made = len(Recording.made)
        listeners.close()
        for p in Recording.made:
            p.transport.close()
        await iterations(2)
        return made

    try:
        assert run_on_loop(loop_name, main) == 3
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_catch_up_accepts_waiting_clients_once_the_interval_has_passed(listening, loop_name):
    Recording.made = []

    async def main(loop):
        listeners = Listeners(loop, [listening], Recording, backlog=128)
        await listeners.start()
        await iterations(2)
        listeners.catch_up()  # looked just now: nothing to do
        clients = waiting_clients(listening.getsockname()[1], 2)
        listeners.catch_up()  # within the interval: no look
        too_soon = len(listeners._setting_up)
        listeners.catch_up_after -= listeners_module.CATCH_UP_INTERVAL * 2  # as if a long pass had run
        listeners.catch_up()  # accepted here, without waiting for the loop to poll the socket
        accepted = len(listeners._setting_up)
        listeners.close()
        await iterations(2)
        for p in Recording.made:
            p.transport.close()
        for c in clients:
            c.close()
        await iterations(2)
        return too_soon, accepted

    assert run_on_loop(loop_name, main) == (0, 2)


class Addressed(asyncio.Protocol):
    """Keeps the addresses a listener gave it before its connection was made."""

    early_data = b""
    peername = sockname = None
    made: list = []

    def connection_made(self, transport):
        self.transport = transport
        self.given = (self.peername, self.sockname)
        Addressed.made.append(self)


def _accept_one(loop_name, listening, **options):
    """What a protocol was given at accept, the client's own address, and the keep-alive
    option of the listening socket and of the accepted one."""
    Addressed.made = []
    client = waiting_clients(listening.getsockname()[1], 1)[0]

    async def main(loop):
        listeners = Listeners(loop, [listening], Addressed, backlog=128, read_early=True, **options)
        await listeners.start()
        for _ in range(300):
            if Addressed.made:
                break
            await asyncio.sleep(0.01)
        made = Addressed.made[0]
        accepted = made.transport.get_extra_info("socket")
        keepalive = (listening.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                     accepted.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        listeners.close(take_waiting=False)  # (closes the listening socket too)
        made.transport.close()
        await iterations(2)
        return made.given, keepalive

    try:
        given, keepalive = run_on_loop(loop_name, main)
        return given, client.getsockname(), keepalive
    finally:
        client.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_connection_gets_the_addresses_accept_told(listening, loop_name):
    local = listening.getsockname()
    (peername, sockname), client, _ = _accept_one(loop_name, listening)
    assert peername == client and sockname == local


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_wildcard_bind_leaves_the_local_address_to_the_connection(loop_name):
    """Bound to every address, a listener does not know which one a client reached: the
    connection asks its own socket (ServerHttpProtocol.connection_made)."""
    sock = socket.socket()
    sock.bind(("0.0.0.0", 0))
    sock.listen(16)
    try:
        (peername, sockname), client, _ = _accept_one(loop_name, sock)
    finally:
        sock.close()
    assert peername == client and sockname is None


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("on", [True, False])
def test_accepted_connections_get_so_keepalive_when_asked(listening, loop_name, on):
    _, _, keepalive = _accept_one(loop_name, listening, tcp_keepalive=on)
    assert keepalive == (int(on), int(on))  # (set on the listener, which they inherit where they can)


def test_accepted_sockets_are_sockets_of_the_listeners_family_and_type(listening):
    """``Acceptor`` gives a client's descriptor; the socket object it makes of it when asked
    (the loop's transport takes one, and detaches it when it closes) has the listener's
    family and type, read without a property."""
    client = waiting_clients(listening.getsockname()[1], 1)[0]
    with client:
        fd, address, data = listeners_module.Acceptor(listening).accept()
        with listeners_module.Acceptor(listening).socket_for(fd) as conn:
            assert isinstance(conn, socket.socket) and address == client.getsockname() and data == b""
            assert (conn.family, conn.type) == (socket.AF_INET, socket.SOCK_STREAM)
            assert type(conn).family is socket.AF_INET  # (a class attribute, not socket's property)
            assert conn.getpeername() == client.getsockname()
            assert conn.fileno() == fd


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="no TCP_DEFER_ACCEPT here")
def test_defer_accept_is_set_on_a_tcp_listener_and_taken_off_again(listening):
    """As SO_KEEPALIVE: set on the listener once, and set off too, for a listener that a worker
    before this one deferred."""
    listeners_module.Acceptor(listening, defer_accept=1)
    assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 1
    listeners_module.Acceptor(listening, defer_accept=0)
    assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0


def test_a_unix_listener_is_not_deferred(tmp_path):
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(tmp_path / "s"))
        unix.listen(8)
        listeners_module.Acceptor(unix, defer_accept=1)  # (no TCP option asked of it: no error)
        assert listeners_module.set_defer_accept(unix, 1) is False


def held_off(loop_name: str, listening, step) -> object:
    """``step(loop, listeners, pool)`` run with 3 clients waiting to be accepted by listeners
    held off behind a real pool of one thread, held, with BACKLOG jobs waiting; the thread is
    let go after it, and its result returned."""
    import threading

    from server.wsgi.pool import BACKLOG, ThreadPool

    Counting.made = []

    async def main(loop):
        pool = ThreadPool(loop, 1)
        hold = threading.Event()
        try:
            for _ in range(BACKLOG + 1):
                pool.submit(hold.wait)
            await wait_for(lambda: pool.busy() == 1)
            listeners = Listeners(loop, [listening], Counting, backlog=128, app_threads=pool)
            await listeners.start()
            clients = waiting_clients(listening.getsockname()[1], 3)
            await iterations(4)
            result = await step(loop, listeners, hold)
            listeners.close()
            await close_all(clients)
            return result
        finally:
            hold.set()
            pool.shutdown()

    return run_on_loop(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_clients_wait_while_the_app_threads_have_a_backlog_and_one_is_taken_when_room_comes(listening, loop_name):
    """Clients are left in the accept queue while the app threads have a backlog. Room coming
    back takes one of them at once, even if the backlog has already refilled (kept
    connections' requests, in the loop's turn before the listener's), and the listener is
    watched again; when the thread has taken the waiting jobs, the rest follow."""
    async def step(loop, listeners, hold):
        waited = len(Counting.made), listeners._watching
        listeners._threads_have_room()  # (as the pool calls it; its backlog is back already)
        await iterations(4)
        one = len(Counting.made)
        hold.set()  # the thread takes the waiting jobs: room, the rest are taken
        await wait_for(lambda: len(Counting.made) == 3)
        return waited, one

    assert held_off(loop_name, listening, step) == ((0, False), 1)


HELD_OFF_HERE = 0.2  # seconds: a hold-off bound no pause of a loaded machine reaches before the early look


@pytest.mark.parametrize("loop_name", LOOPS)
def test_clients_held_off_behind_a_backlog_that_stays_are_taken_once_held_off_at_most_has_passed(
        listening, loop_name, monkeypatch):
    """Kept connections may keep the app threads' backlog up for good (room never comes): a
    request ending later than HELD_OFF_AT_MOST after the hold-off began (the worker then calls
    ``catch_up``) takes a pass of the waiting clients whatever the backlog, and watches again;
    one ending before it takes none. (The bound is raised here so that the early look comes
    before it however the machine schedules the test: at 1 ms, a pause of the process between
    the hold-off and that look would pass it.)"""
    monkeypatch.setattr(listeners_module, "HELD_OFF_AT_MOST", HELD_OFF_HERE)

    async def step(loop, listeners, hold):
        held_for = listeners.catch_up_after - loop.time()
        listeners.catch_up()  # (a request ending before the bound: not yet)
        await iterations(4)
        early = len(Counting.made), listeners._watching
        await wait_for(lambda: loop.time() > listeners.catch_up_after)
        listeners.catch_up()
        await wait_for(lambda: len(Counting.made) == 3)
        return early, (listeners._watching, listeners._app_threads.backlogged()), held_for

    early, watching, held_for = held_off(loop_name, listening, step)
    assert (early, watching) == ((0, False), (True, True))
    # (the hold-off's own bound, not the catch-up interval's 5 ms that _accept had set)
    assert listeners_module.CATCH_UP_INTERVAL < held_for <= HELD_OFF_HERE
