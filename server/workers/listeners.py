"""Accepting on gunicorn's listening sockets from the loop, in batches, with pausing.

    listening socket ──readable──► accept() until EAGAIN (at most ``backlog``)
        ├─► served on its socket until it needs the loop (``on_socket``: accepted.py)
        └─► loop.connect_accepted_socket(protocol_factory, conn[, ssl]) per connection

gunicorn hands the worker already-listening sockets (TCP, unix, systemd or
re-exec fds); they keep gunicorn's ``backlog``. The worker watches them with
``add_reader`` and accepts every waiting connection on each readiness event.
It does not let the loop's server accept: libuv (uvloop) accepts *one*
connection per loop iteration, so under load, when an iteration serves
hundreds of connections, new clients wait seconds in the accept queue.

A new client has usually sent its request by the time it is accepted (on
Linux the listeners wait for it: ``TCP_DEFER_ACCEPT``, ``set_defer_accept``); for
protocols that take them (``read_early``) those bytes are read at accept and
handed over with the connection, so the request is answered when the
connection is made instead of after the loop's next pass over every socket.
What accept tells of the connection goes with them: the client's address, and
the local one when the listener is bound to one address (a wildcard bind is
asked per connection). ``SO_KEEPALIVE`` (``tcp_keepalive``) is set on the
listener, which its connections inherit, and ``accept_early`` makes no socket
object: a connection served on its socket never needs one. Behind a proxy that
opens a connection per request, each is a few calls and objects less.

Under load the listening socket's turn comes once per pass of the loop over
its sockets, which may take tens of milliseconds; the worker calls ``catch_up``
as it finishes requests, which accepts what waits if the last look is more
than ``CATCH_UP_INTERVAL`` old.

While the app's threads have a backlog (``app_threads``: the WSGI pool, 8 requests
waiting for a thread) the listeners stop watching too, until the threads have taken
it down to 4, or for ``HELD_OFF_AT_MOST`` while requests end (kept connections may
keep the backlog up for good: a thousand of them held new clients for a second; with
the bound, the slowest waited 27 ms): new clients wait in the accept queue,
where a worker with free threads takes them, and the loop does not spend its
turn accepting clients whose requests could only wait, while the threads that
would answer the ones it has wait for it (measured: a client's core idle 8% of
the time at c=50, a new connection per request; 0.5% with it).

Pausing (``worker_connections`` reached) stops watching: new clients wait in
the kernel's accept queue, as with gunicorn's own workers. Running out of file
descriptors pauses accepting for a second instead of spinning. Closing (a
graceful stop) takes the clients already waiting and closes the descriptors.
"""

import asyncio
import errno
import functools
import ipaddress
import math
import os
import socket
import sys

from ..protocol.compiled import compiled
from .accepted import FIRST_READ, AcceptedTransport, FirstBytes

RETRY_AFTER_RESOURCE_ERROR = 1.0  # seconds
EARLY_READ = FIRST_READ  # bytes read at accept (see accepted.py)
# Clients served on their sockets in one pass (accepted.py): each is torn down in the
# loop's callbacks after the pass, so a longer run of them piles up objects that no longer
# fit a core's cache (measured: runs of hundreds cost 5% at c=50, a connection per
# request); the rest wait for the next pass, which comes at once.
SERVED_PER_PASS = 32
CATCH_UP_INTERVAL = 0.005  # seconds between looks for waiting clients from catch_up()
HELD_OFF_AT_MOST = 0.001  # seconds new clients are held off behind the app threads' backlog
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Listeners:
    def __init__(self, loop, gunicorn_sockets, protocol_factory, backlog: int, *, ssl=None,
                 ssl_handshake_timeout: float | None = None, log=None, read_early: bool = False,
                 capacity=None, on_full=None, tcp_keepalive: bool = False, on_socket: bool = False,
                 defer_accept: int = 0, app_threads=None):
        """``capacity``: ``(open_connections, limit)``, a callable and a number: at the limit
        accepting pauses. When a client then waits, ``on_full(take)`` makes room:
        ``take(n)`` accepts up to ``n`` waiting clients past the limit (returning how many)
        for connections it closes at once; it returns True to be called again while
        clients wait, False to wait for connections to end (``resume``)."""
        self._loop = loop
        self._capacity = capacity
        self._on_full = on_full
        # ``backlogged()`` and ``call_when_room(callback)`` of the threads that answer the
        # clients (server/wsgi/pool.py), or None.
        self._app_threads = app_threads
        # Protocols with ``early_data`` take the bytes a client sent before it was accepted.
        self._read_early = read_early and ssl is None
        # A new connection is served on its socket first (accepted.py), when its protocol
        # can be (``needs_reading``).
        self._on_socket = self._read_early and on_socket
        self._log = log  # failed connection set-ups (TLS handshakes) are logged at debug level
        self._tls = {} if ssl is None else {"ssl": ssl, "ssl_handshake_timeout": ssl_handshake_timeout or None}
        self._sockets = [s.sock if hasattr(s, "sock") else s for s in gunicorn_sockets]
        self._acceptors = {sock: Acceptor(sock, tcp_keepalive, EARLY_READ if self._read_early else 0,
                                          defer_accept)
                           for sock in self._sockets}
        self._factory = protocol_factory
        self._batch = max(1, backlog)
        self._per_pass = min(self._batch, SERVED_PER_PASS) if self._on_socket else self._batch
        self._set_state("stopped")  # stopped | serving | paused | closed
        self._watching = False
        self._retry: asyncio.TimerHandle | None = None
        # Loop time after which catch_up looks for waiting clients: CATCH_UP_INTERVAL after the
        # last accept attempt (a plain attribute: the worker tests it before each call, see
        # AsyncWorker.request_done).
        self.catch_up_after = CATCH_UP_INTERVAL
        self._catch_up_due = False  # a catch_up waits for the loop's callbacks
        self._held_off = False  # not watching while the app's threads have a backlog (_hold_off)
        self._first_bytes: FirstBytes | None = None  # made with the first client served on its socket
        self._setting_up: set = set()  # set-up coroutines of connections not made yet
        self._waiting_watched = False  # paused, but told when a client waits (notify_waiting)

    def _set_state(self, state: str) -> None:
        """The one place the state changes: ``paused`` follows it (a plain attribute, tested
        for each connection that closes)."""
        self._state = state
        self.paused = state == "paused"

    async def start(self) -> None:
        self._set_state("serving")
        self._watch()

    def pause(self) -> None:
        if self._state != "serving":
            return
        self._set_state("paused")
        self._unwatch()

    def notify_waiting(self, callback) -> None:
        """While paused: call ``callback()`` once, when a client waits in the accept queue."""
        if self._state != "paused" or self._waiting_watched:
            return
        self._waiting_watched = True
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._client_waits, callback)

    def _client_waits(self, callback) -> None:
        """Clients wait at the cap: the owner makes room for them (see ``__init__``)."""
        self._stop_waiting_watch()
        if callback(self._take) and self._state == "paused":
            self.notify_waiting(callback)

    def _take(self, most: int) -> int:
        """Accept up to ``most`` waiting clients, whatever the capacity; how many."""
        self.catch_up_after = self._loop.time() + CATCH_UP_INTERVAL
        taken = 0
        for sock in self._sockets:
            while taken < most and self._accept_one(sock):
                taken += 1
        return taken

    def _stop_waiting_watch(self) -> None:
        if self._waiting_watched:
            self._waiting_watched = False
            for sock in self._sockets:
                self._loop.remove_reader(sock.fileno())

    def resume(self) -> None:
        if self._state != "paused":
            return
        self._stop_waiting_watch()
        self._set_state("serving")
        if self._retry is None:
            self._watch()

    def close(self, take_waiting: bool = True) -> None:
        """Stop accepting for good (graceful stop), and refuse later clients at once.

        The clients already in the accept queue connected before the stop: they are
        taken (and answered with ``Connection: close``; at most a backlog's worth, even
        past ``worker_connections``), unless ``take_waiting`` is False (a quick stop). Then the listening descriptors this process holds
        are closed: once the master has closed its copies too, as gunicorn's arbiter
        does on TERM, a new client is refused at once instead of waiting in a queue
        nobody reads. On a reload the master keeps its copies for the new workers.
        """
        if self._state == "closed":
            return
        self._stop_waiting_watch()
        self._unwatch()
        waiting = self._take_waiting() if self._state != "stopped" and take_waiting else ()
        self._set_state("closed")
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for sock in self._sockets:
            sock.close()
        in_task = bool(waiting) and asyncio.current_task(self._loop) is not None  # (a stop from an app's request)
        for acceptor, accepted in waiting:
            self._set_up(acceptor, *accepted, in_task)

    def _take_waiting(self) -> list:
        """Accept the clients in the accept queues now, all of them (they connected before
        the stop), without serving them yet: one served on its socket may be answered at
        once, and its client's next connection belongs to the next worker."""
        waiting = []
        for sock in self._sockets:
            for _ in range(self._batch):
                if not self._accept_one(sock, waiting):  # (out of descriptors: the rest are left)
                    break
        return waiting

    def catch_up(self) -> None:
        """Accept waiting clients now, if nobody looked for a while (cheap to call often).

        Called as a request ends, maybe in its app's task: then the accepting waits for the
        task's step to end, as a callback of the loop (serving a client on its socket may run
        a step of its app's task, which cannot run inside another's)."""
        if (self._watching or self._held_off) and self._loop.time() > self.catch_up_after:
            if not self._on_socket or asyncio.current_task(self._loop) is None:
                self._accept_all()
            elif not self._catch_up_due:
                self._catch_up_due = True
                # (until it runs, the worker's test before each call fails: the other requests
                # this pass ends, a thousand at c=1000, call nothing)
                self.catch_up_after = math.inf
                self._loop.call_soon(self._accept_all)

    def _accept_all(self) -> None:
        self._catch_up_due = False
        self.catch_up_after = self._loop.time() + CATCH_UP_INTERVAL  # (_accept's too, when watching)
        if self._held_off and self._state == "serving" and self._retry is None:
            self._watch()  # (held off long enough: a pass is taken whatever the backlog)
            for sock in self._sockets:
                self._accept(sock, held_back=False)
        elif self._watching:
            for sock in self._sockets:
                self._accept(sock)

    # -- internals --------------------------------------------------------

    def _watch(self) -> None:
        self._held_off = False
        if self._watching:
            return
        self._watching = True
        for sock in self._sockets:
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _unwatch(self) -> None:
        if not self._watching:
            return
        self._watching = False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())

    def _accept(self, sock, most: int | None = None, held_back: bool = True) -> None:
        """Accept what waits: at most one backlog's worth, or ``most``; clients served on
        their sockets, ``SERVED_PER_PASS`` in one pass of the loop. ``held_back``: not past
        the app threads' backlog (``_hold_off``)."""
        self.catch_up_after = self._loop.time() + CATCH_UP_INTERVAL
        if most is None:
            most = self._per_pass
        room = self._room()  # (counted down, and counted again only when it runs out)
        threads = self._app_threads if held_back else None
        for _ in range(most):
            if self._state != "serving":
                return
            if threads is not None and threads.backlogged() and self._hold_off():
                return
            if room <= 0:
                room = self._room()
                if room <= 0:
                    self._full()
                    return
            if not self._accept_one(sock):
                return
            room -= 1

    def _accept_one(self, sock, taken: list | None = None) -> bool:
        """Accept one waiting client and set it up, or append ``(acceptor, accepted)`` to
        ``taken``; False when none waits (or accepting must pause)."""
        acceptor = self._acceptors[sock]
        try:
            accepted = acceptor.accept()
        except ConnectionAbortedError:
            return True
        except OSError as exc:
            if exc.errno not in _RESOURCE_ERRORS:
                raise
            self._loop.call_exception_handler({
                "message": f"Accepting paused for {RETRY_AFTER_RESOURCE_ERROR:g}s: {exc}", "exception": exc})
            self._unwatch()
            self._retry = self._loop.call_later(RETRY_AFTER_RESOURCE_ERROR, self._retry_accepting)
            return False
        if accepted is None:
            return False
        if taken is None:
            if self._on_socket:  # (what _set_up does first, here: a call less per client)
                self._serve_on_socket(acceptor, *accepted)
            else:
                self._set_up(acceptor, *accepted)
        else:
            taken.append((acceptor, accepted))
        return True

    def _hold_off(self) -> bool:
        """Stop watching until the app's threads have taken their backlog down (pool.py,
        ``ROOM``), or until ``catch_up`` finds it has lasted ``HELD_OFF_AT_MOST``; False if
        they have meanwhile."""
        if not self._app_threads.call_when_room(self._threads_have_room):
            return False
        self._unwatch()
        self._held_off = True
        self.catch_up_after = self._loop.time() + HELD_OFF_AT_MOST
        return True

    def _threads_have_room(self) -> None:
        """Watch again, and take one waiting client at once: while the loop serves kept
        connections too, their requests may refill the backlog before the listener's turn,
        and a new client must not wait for a pass that comes first."""
        if self._state != "serving" or self._retry is not None:
            return
        self._watch()
        for sock in self._sockets:
            if self._room() > 0:
                self._accept_one(sock)

    def _room(self) -> int | float:
        """How many more connections may be open (infinite without a capacity)."""
        capacity = self._capacity
        if capacity is None:
            return math.inf
        # (connections being set up are not open yet, but they count)
        return capacity[1] - capacity[0]() - len(self._setting_up)

    def _full(self) -> None:
        self.pause()
        if self._on_full is not None:
            self.notify_waiting(self._on_full)

    def _retry_accepting(self) -> None:
        self._retry = None
        if self._state == "serving":
            self._watch()

    def _set_up(self, acceptor: "Acceptor", fd: int, peer, data: bytes, in_task: bool = False) -> None:
        """Serve the client on its socket (see accepted.py), or hand it to the loop now.

        ``in_task``: called in a step of a task (a graceful stop asked by an app's request),
        where serving a client on its socket may not run: it may step the client's own task.
        Every other caller runs in a loop callback (a readiness event, ``catch_up``'s own
        callback when asked in a task), so the task need not be asked for each client."""
        if self._on_socket and not in_task:
            self._serve_on_socket(acceptor, fd, peer, data)
            return
        factory = self._factory
        if self._read_early:
            factory = _AcceptedFactory(factory, data, peer, acceptor.local, fd)
        try:
            sock = acceptor.socket_for(fd)
        except OSError as exc:  # (not a socket any more: hardly ever)
            os.close(fd)
            self._failed(exc)
            return
        self._hand_to_loop(sock, factory)

    def _serve_on_socket(self, acceptor: "Acceptor", fd: int, peer, data: bytes) -> None:
        """The protocol takes the early bytes on an ``AcceptedTransport``; the loop makes its
        transport after that only if the connection still needs it."""
        template = acceptor.transport_template
        if template is None:
            template = acceptor.transport_template = self._transport_template(acceptor)
        failure = serve_accepted(self._factory, template, fd, peer, data)
        if failure is not None:
            self._failed(failure)

    def _transport_template(self, acceptor: "Acceptor") -> AcceptedTransport:
        """What the transports of ``acceptor``'s clients served on their sockets are copies of
        (``AcceptedTransport.copy_for``): never served itself."""
        if self._first_bytes is None:
            self._first_bytes = FirstBytes.make(self._loop)
        # (positional: a class called with keywords makes a dict)
        return AcceptedTransport(self._loop, -1, None, None, acceptor.local, self._hand_to_loop, self._first_bytes,
                                 True, acceptor.socket_for)

    def _hand_to_loop(self, conn, factory, failed=None) -> None:
        """Hand ``conn`` to the loop now, not on the next loop iteration.

        ``connect_accepted_socket`` is a coroutine. Run as a task, its first step
        would wait for the next iteration and the transport's ``connection_made``
        for the one after; under load, when an iteration serves hundreds of
        connections, that is a long wait for a new client. Its first step is run
        here instead (the transport is made and ``connection_made`` scheduled),
        and the rest when what it awaits is done, as a task would. ``failed(exc)``:
        told if it fails (else it is reported).
        """
        coro = self._loop.connect_accepted_socket(factory, conn, **self._tls)
        if failed is None:
            self._setting_up.add(coro)
        self._step(coro, failed)

    def _step(self, coro, failed=None) -> None:
        try:
            awaited = coro.send(None)
        except StopIteration:
            self._setting_up.discard(coro)
            return
        except BaseException as exc:  # noqa: BLE001 - reported like a task's exception
            self._setting_up.discard(coro)
            if failed is not None and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                failed(exc)
            else:
                self._failed(exc)
            return
        if awaited is None:  # a bare yield: go on in the next iteration
            self._loop.call_soon(self._step, coro, failed)
        else:
            awaited.add_done_callback(lambda _: self._step(coro, failed))

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, OSError):  # a reset or failed TLS handshake is routine
            if self._tls and self._log is not None:
                self._log.debug("Connection closed during set-up (TLS handshake): %r", exc)
            return
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise exc
        self._loop.call_exception_handler({"message": "Error setting up a connection", "exception": exc})


def serve_accepted_py(factory, template: AcceptedTransport, fd: int, peer, data: bytes) -> BaseException | None:
    """A new connection made by ``factory()`` and served on its accepted socket ``fd``, on a
    copy of ``template`` (``Listeners._transport_template``), given what accept learnt (as
    ``_told`` gives it): what ``factory()`` raised (the descriptor then closed), else None. The
    reference of ``_chead.serve_accepted``."""
    try:
        protocol = factory()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - reported as a failed set-up is
        os.close(fd)
        return exc
    protocol.early_data = data  # (what _told does, inline: every client)
    if peer is not None:
        protocol.peername = peer
    protocol.sockname = template._local
    protocol.socket_fd = fd
    transport = template.copy_for(fd, protocol, peer, bool(data))
    transport.serve(protocol.connection_made, transport)
    return None


serve_accepted = compiled("serve_accepted") or serve_accepted_py


def accept_early_py(listener, read_size: int, keepalive: bool):
    """``(fd, address, data)`` of a client waiting on ``listener``, or None when none waits:
    its descriptor (non-blocking, as the loop's transports make it), its address (None but
    for TCP: an AF_UNIX client's is no address worth keeping) and up to ``read_size`` bytes
    it sent already (b"" when none, at its end, or failing: its transport learns), with
    ``SO_KEEPALIVE`` set when ``keepalive``. The reference of ``_chead.accept_early``."""
    try:
        fd, address = listener._accept()
    except (BlockingIOError, InterruptedError):
        return None
    # (family, type and protocol given: a send, a read or an option does not depend on them)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fd)
    try:
        sock.setblocking(False)
        if keepalive:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError:
                pass  # (gone already: its transport will tell)
        data = b""
        if read_size > 0:
            try:
                data = sock.recv(read_size)
            except OSError:
                pass  # nothing yet, or a reset or failure its transport's next read will see
    except BaseException:
        sock.close()
        raise
    sock.detach()
    return fd, address if type(address) is tuple else None, data


accept_early = compiled("accept_early") or accept_early_py


class _AcceptedFactory:
    """Makes the protocol and gives it what accept learnt: the bytes read (its ``early_data``),
    the client's address (``peername``), when known the local one (``sockname``), and the
    socket's descriptor (``socket_fd``)."""

    __slots__ = ("factory", "data", "peer", "local", "fd")

    def __init__(self, factory, data: bytes, peer, local, fd: int):
        self.factory = factory
        self.data = data
        self.peer = peer
        self.local = local
        self.fd = fd

    def __call__(self):
        return _told(self.factory(), self.data, self.peer, self.local, self.fd)


def _told(protocol, data: bytes, peer, local, fd: int):
    """``protocol``, given what accept learnt (see ``_AcceptedFactory``)."""
    protocol.early_data = data
    if peer is not None:
        protocol.peername = peer
    protocol.sockname = local
    protocol.socket_fd = fd
    return protocol


class Acceptor:
    """Accepts on one listening socket, and knows what its connections share.

    ``accept()`` gives a client's descriptor, not a socket object: a connection served on
    its socket and closed (accepted.py) never needs one, and making one costs a
    ``getsockname()`` (CPython's check of the descriptor) and an object per client.
    ``socket_for(fd)`` makes it when it is needed (the loop's transport takes one). Those
    socket objects read their ``family`` and ``type`` as class attributes:
    ``socket.socket``'s are properties that build an enum member at each read (about 0.9 µs),
    and the loop's ``connect_accepted_socket`` reads them several times per connection.
    ``local``: the local address of every connection, when the listener is bound to one
    address (else None).
    """

    __slots__ = ("sock", "local", "_socket_class", "_family", "_type", "_proto", "_read_size", "accept",
                 "transport_template")

    def __init__(self, sock, tcp_keepalive: bool = False, read_size: int = 0, defer_accept: int = 0):
        self.sock = sock
        self._family, self._type, self._proto = sock.family, sock.type, sock.proto
        tcp = self._family in (socket.AF_INET, socket.AF_INET6)
        if tcp:
            set_defer_accept(sock, defer_accept)
        self._read_size = read_size  # bytes read at accept (0: none)
        # accept(): ``(fd, address, data)`` of a waiting client (see ``accept_early_py``), or None
        # when none waits. SO_KEEPALIVE is set on each connection (by a call per connection)
        # until the listener's own, which its connections inherit, is on every one that waits
        # (_accept_until_inherited); then accept() is the compiled accept itself, no call of ours.
        inherited = tcp and set_inherited_keepalive(sock, tcp_keepalive)
        if inherited and tcp_keepalive:
            self.accept = self._accept_until_inherited
        else:
            self.accept = functools.partial(accept_early, sock, read_size, tcp_keepalive and tcp and not inherited)
        self.local = fixed_local_address(sock) if tcp else None
        self._socket_class = accepted_socket_class(self._family, self._type)
        self.transport_template = None  # the template of its clients' transports (Listeners._serve_on_socket)

    def _accept_until_inherited(self) -> tuple | None:
        """``accept()`` while clients that connected before the listener got its SO_KEEPALIVE
        may still wait (its connections take its options when they are made, not when
        accepted): each gets its own."""
        accepted = accept_early(self.sock, self._read_size, True)
        if accepted is None:  # all accepted: from now on every one has it from the listener
            self.accept = functools.partial(accept_early, self.sock, self._read_size, False)
        return accepted

    def socket_for(self, fd: int) -> socket.socket:
        """The socket object of an accepted client's descriptor, which it then owns."""
        return self._socket_class(self._family, self._type, self._proto, fd)


def set_inherited_keepalive(sock, on: bool) -> bool:
    """Set ``SO_KEEPALIVE`` on the TCP listener ``sock`` as ``on`` asks, for the connections it
    accepts to inherit (Linux and the BSDs copy a listener's socket options to a connection as
    it is made): one call for the worker instead of one per connection. Set off too, so a
    listener that a worker before this one (another configuration, gunicorn's reload) or
    systemd's ``KeepAlive=`` set on does not keep it. (Off, the few clients that were waiting
    already keep it on: harmless, and only a call each could take it off.) False where it is
    not done: the connections then need their own call."""
    if not INHERITS_SOCKET_OPTIONS:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(on))
    except OSError:
        return False
    return True


def set_defer_accept(sock, seconds: int) -> bool:
    """Set ``TCP_DEFER_ACCEPT`` on the TCP listener ``sock`` (Linux; as nginx's ``deferred``):
    a client is handed to ``accept()`` once its first bytes have come, or ``seconds`` after it
    connected if none have (then as any idle client, under the header timeout). 0 turns it
    off (it may have been set by a worker before this one). False where it is not done.

    Nearly every client sends its request right after connecting: accepted with it, the
    connection is read and answered at once, with no wake-up for its handshake, no empty read
    and no wait for readiness (measured: 30% of a worker's time for a hello on a new connection),
    and a client that connects and sends nothing holds no descriptor of the worker."""
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, seconds)
    except OSError:
        return False
    return True


INHERITS_SOCKET_OPTIONS = sys.platform.startswith(("linux", "darwin", "freebsd", "openbsd", "netbsd"))


@functools.cache
def accepted_socket_class(family, kind) -> type:
    """A ``socket.socket`` whose family and type are those of a class of its own."""
    return type("AcceptedSocket", (socket.socket,), {"__slots__": (), "family": family, "type": kind})


def fixed_local_address(sock):
    """The local address of every connection accepted on the TCP listener ``sock``: its own,
    when it is bound to one IP address; None for a wildcard bind (one per local address a
    client reaches)."""
    try:
        address = sock.getsockname()
    except OSError:
        return None
    return None if ipaddress.ip_address(address[0]).is_unspecified else address

