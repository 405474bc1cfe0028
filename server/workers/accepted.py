"""A new connection served on its accepted socket, before the loop's transport is made.

    accept ─► read early ─► protocol.connection_made(AcceptedTransport)
                              │ writes go to the socket at once
                              ├─ closed: done; the loop never made a transport
                              └─ needs the loop ─► hand_to_loop ─► connect_accepted_socket
                                   (its connection_made: the loop's transport takes the
                                    protocol, and what waited here, and every call after)

Making the loop's transport costs about 12 µs a connection on uvloop (a coroutine and
its future, the socket's addresses asked again, a weak dictionary entry, a libuv handle
opened, watched and closed on a later pass), as much as the rest of a small request. A
client that opens a connection per request pays it for each: nginx in front, without
upstream keep-alive, its default. So a connection first gets an ``AcceptedTransport``:
the bytes read at accept go to the protocol, what it writes goes to the socket at once,
and the loop's transport is made only when the connection needs the loop: input to read
(``needs_reading()`` of the protocol, asked once the early bytes are taken, or a
``resume_reading``), a write the socket did not take whole, a half close, a file to send
(``loop_transport()``). A connection whose request was whole at accept and whose answer
closes it never gets one: an answer given at accept (ASGI, native), or a WSGI answer from
its thread, which reads nothing meanwhile (as gunicorn's sync worker: the client's
leaving shows when the answer is written).

While the loop's transport is being made (its ``connection_made`` comes with the loop's
callbacks), writes, a half close, a close or an abort wait here and go to it in order
then; after that every call goes to it, and the protocol is told to use it directly
(``transport_handed_over``).
"""

import asyncio
import os
import select
import socket
import struct
import types

from ..protocol.compiled import compiled
from ..protocol.copies import COPIES_COMPILED, copy_of
from ..protocol.lease import send_now

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets
_NO_EXTRA = types.MappingProxyType({})  # (an AcceptedTransport's _extra: see its __init__)
# Bytes read at accept, or by the first read here: a request head's worth, and below every
# read-pause threshold of the protocols (pipelining 64 KiB, request bodies 256 KiB), so
# taking them never needs to pause a transport that is not reading yet.
FIRST_READ = 16 * 1024
# Bytes waiting for the loop's transport past which the protocol is paused for writing
# (uvloop's and asyncio's transports' own default high-water mark).
PENDING_HIGH_WATER = 64 * 1024
_ONE_READ = getattr(select, "EPOLLIN", 0) | getattr(select, "EPOLLONESHOT", 0)  # (FirstBytes: Linux)


def recv_nowait_py(fd: int, size: int) -> bytes | None:
    """Up to ``size`` bytes read on the non-blocking socket ``fd``: b"" at its end, None when
    nothing waits (``OSError`` for a reset). The reference of ``_chead.recv_nowait``."""
    try:
        return os.read(fd, size)
    except (BlockingIOError, InterruptedError):
        return None


recv_nowait = compiled("recv_nowait") or recv_nowait_py


def socket_of_descriptor(fd: int) -> socket.socket:
    """A socket object for ``fd`` (which it then owns), its family and type asked of it."""
    return socket.socket(fileno=fd)


class AcceptedTransport(asyncio.Transport):
    """A transport over an accepted socket's descriptor ``fd`` (non-blocking), until
    ``hand_to_loop(sock, protocol_factory, failed)`` has made the loop's. The socket object
    is made only when it is asked for (``get_extra_info("socket")``, an abort, the hand-over),
    by ``socket_of(fd)``; it then owns the descriptor."""

    __slots__ = ("_loop", "_fd", "_sock", "_socket_of", "_protocol", "_peer", "_local", "_hand_to_loop", "_loop_transport",
                 "_pending", "_pending_size", "_paused_writing", "_closing", "_aborted", "_eof", "_paused", "_waiter",
                 "_read_once", "_first_bytes", "_watching")

    def __init__(self, loop, fd: int, protocol, peer, local, hand_to_loop, first_bytes=None, read_once: bool = True,
                 socket_of=socket_of_descriptor):
        # (not BaseTransport.__init__: its dict of extra information, made per connection, is
        # never read here, where get_extra_info answers for itself)
        self._extra = _NO_EXTRA
        self._loop = loop
        self._fd = fd  # -1 once closed here or owned by the loop's transport
        self._sock: socket.socket | None = None  # made from _fd when asked for (_socket)
        self._socket_of = socket_of
        self._protocol = protocol
        self._peer = peer
        self._local = local
        self._hand_to_loop = hand_to_loop
        self._loop_transport = None
        self._pending: list | None = None  # bytes for the loop's transport, once it is asked for
        self._pending_size = 0
        self._paused_writing = False
        self._closing = False
        self._aborted = False
        self._eof = False
        self._paused = False
        self._waiter: asyncio.Future | None = None
        self._read_once = read_once  # the read at accept took bytes: the next read is the loop's
        self._first_bytes = first_bytes  # a FirstBytes: what waits for a silent client's first bytes
        self._watching = False  # waiting for them

    def copy_for(self, fd: int, protocol, peer, read_once: bool) -> "AcceptedTransport":
        """A transport like this one (a template, never served: see ``Listeners``) over ``fd``,
        for ``protocol``: its slots copied in one compiled call (protocol/copies.py), then what
        differs. (Made the usual way where the copy is not compiled: it would cost more.)"""
        if not COPIES_COMPILED:
            return AcceptedTransport(self._loop, fd, protocol, peer, self._local, self._hand_to_loop,
                                     self._first_bytes, read_once, self._socket_of)
        transport = copy_of(self)
        transport._fd = fd
        transport._protocol = protocol
        transport._peer = peer
        transport._read_once = read_once
        return transport

    # -- what stays on the socket ---------------------------------------------

    def write(self, data) -> None:
        if self._loop_transport is not None:
            self._loop_transport.write(data)
            return
        if self._closing or self._eof or not data:
            return
        if self._pending is None:
            try:
                sent = send_now(self._fd, data if type(data) is bytes else bytes(data))
            except OSError:  # (full, or the client is gone: the loop's transport learns which)
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
            self.hand_to_loop()
            if self._pending is None:  # (the hand-over failed at once: the connection is lost)
                return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size > PENDING_HIGH_WATER and not self._paused_writing and self._protocol is not None:
            self._paused_writing = True  # (until the loop's transport has them: see _attach)
            self._protocol.pause_writing()

    def writelines(self, pieces) -> None:
        if self._loop_transport is not None:
            self._loop_transport.writelines(pieces)
        else:
            self.write(b"".join(pieces))

    def close(self) -> None:
        if self._loop_transport is not None:
            self._loop_transport.close()
        elif not self._closing:
            self._closing = True
            if self._pending is None:
                self._close_socket()

    def abort(self) -> None:
        if self._loop_transport is not None:
            self._loop_transport.abort()
            return
        if self._pending is None:
            if not self._closing:
                self._closing = True
                try:
                    self._socket().setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                except OSError:
                    pass
                self._close_socket()
        else:
            self._closing = self._aborted = True
            self._pending.clear()
            self._pending_size = 0

    def is_closing(self) -> bool:
        if self._loop_transport is not None:
            return self._loop_transport.is_closing()
        return self._closing

    def get_write_buffer_size(self) -> int:
        if self._loop_transport is not None:
            return self._loop_transport.get_write_buffer_size()
        return self._pending_size

    def get_extra_info(self, name, default=None):
        if self._loop_transport is not None:
            return self._loop_transport.get_extra_info(name, default)
        if name == "peername":
            if self._peer is None:  # (not told at accept: a unix socket's, as the loop's transports give it)
                self._peer = self._ask_socket(socket.socket.getpeername)
            return self._peer if self._peer is not None else default
        if name == "sockname":
            if self._local is None:
                self._local = self._ask_socket(socket.socket.getsockname)
            return self._local if self._local is not None else default
        if name == "socket":
            return self._socket() if self._fd >= 0 else default
        return default

    def get_protocol(self):
        return self._loop_transport.get_protocol() if self._loop_transport is not None else self._protocol

    def set_protocol(self, protocol) -> None:
        if self._loop_transport is not None:
            self._loop_transport.set_protocol(protocol)
        else:
            self._protocol = protocol

    def pause_reading(self) -> None:
        if self._loop_transport is not None:
            self._loop_transport.pause_reading()
        else:
            self._paused = True
            self._stop_watching()

    def is_reading(self) -> bool:
        if self._loop_transport is not None:
            return self._loop_transport.is_reading()
        return not self._paused and not self._closing

    def can_write_eof(self) -> bool:
        return True if self._loop_transport is None else self._loop_transport.can_write_eof()

    # -- what needs the loop ----------------------------------------------------

    def resume_reading(self) -> None:
        if self._loop_transport is not None:
            self._loop_transport.resume_reading()
            return
        self._paused = False
        if not self._closing:
            self.hand_to_loop()  # (the protocol waits for input)

    def write_eof(self) -> None:
        if self._loop_transport is not None:
            self._loop_transport.write_eof()
        elif not self._closing and not self._eof:
            self.hand_to_loop()
            self._eof = True

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self.hand_to_loop()
        if self._loop_transport is not None:
            self._loop_transport.set_write_buffer_limits(high, low)

    async def loop_transport(self):
        """The loop's transport, made for this connection if it has none yet (file bodies
        need its flow control and its socket's ownership)."""
        if self._loop_transport is None:
            if self._fd < 0:  # (closed here)
                raise ConnectionResetError("Client disconnected")
            if self._waiter is None:
                self._waiter = self._loop.create_future()
            waiter = self._waiter  # (made first: a hand-over that fails at once tells it too)
            self.hand_to_loop()
            await waiter
        return self._loop_transport

    def serve(self, step, data) -> None:
        """``step(data)`` (the protocol's ``connection_made`` or a read's bytes), then
        ``settle``; what it raises is reported as the loop reports a callback's, and the
        connection is reset (as the loop's transports end one whose protocol failed)."""
        try:
            step(data)
            self.settle()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001
            self._loop.call_exception_handler({"message": "Error serving a new connection", "exception": exc,
                                               "protocol": self._protocol, "transport": self})
            self.abort()

    def settle(self) -> None:
        """The protocol has taken what was read: leave the connection here if it needs
        nothing read (or is closed), wait here for its first bytes if none came yet, else
        hand it to the loop."""
        if (self._closing or self._pending is not None or self._loop_transport is not None
                or not self._protocol.needs_reading()):
            return
        if self._read_once or self._paused or self._first_bytes is None:
            self.hand_to_loop()
        else:
            self._watching = True
            self._first_bytes.watch(self._fd, self._read_first)

    def hand_to_loop(self) -> None:
        """Have the loop make its transport for the socket (once)."""
        if self._pending is not None or self._loop_transport is not None or self._fd < 0:
            return
        self._stop_watching()
        self._pending = []
        try:
            sock = self._socket()
        except OSError as exc:  # (not a socket any more: the connection is lost)
            self._hand_over_failed(exc)
            return
        self._hand_to_loop(sock, _HandOver(self), self._hand_over_failed)

    # -- internals ---------------------------------------------------------------

    def _attach(self, transport) -> None:
        """The loop's transport is made (its ``connection_made``): it takes the protocol, and
        what waited here, in order."""
        protocol, self._protocol = self._protocol, None
        self._loop_transport = transport
        self._sock, self._fd = None, -1  # (the loop's transport owns it now)
        transport.set_protocol(protocol)
        handed_over = getattr(protocol, "transport_handed_over", None)
        if handed_over is not None:
            handed_over(transport)
        pending, self._pending = self._pending, None
        self._pending_size = 0
        if pending:
            transport.writelines(pending)
        if self._paused_writing:
            self._paused_writing = False
            # (past its high-water mark the loop's transport has paused the protocol too,
            # a second pause that changes nothing, and resumes it as it drains)
            if transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[1]:
                protocol.resume_writing()
        if self._eof:
            transport.write_eof()
        if self._aborted:
            transport.abort()
        elif self._closing:
            transport.close()
        elif self._paused:
            transport.pause_reading()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _hand_over_failed(self, exc: BaseException) -> None:
        """The loop could not make its transport: the connection is lost."""
        self._closing = True
        self._pending = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError(f"Client disconnected: {exc!r}"))
        self._close_socket(exc if isinstance(exc, Exception) else None)

    def _read_first(self) -> None:
        """The first bytes of a client that had sent none at accept (it is usually a few
        microseconds behind its connect), read here (``FirstBytes`` no longer watches)."""
        self._watching = False
        try:
            data = recv_nowait(self._fd, FIRST_READ)
        except OSError as exc:  # (a reset)
            self._closing = True
            self._close_socket(exc)
            return
        if data is None:  # (nothing after all)
            self.settle()
            return
        self._read_once = True
        protocol = self._protocol
        if not data:  # (it left without a word)
            protocol.eof_received()
            self.close()
            return
        self.serve(getattr(protocol, "first_data_received", protocol.data_received), data)

    def _socket(self) -> socket.socket:
        """The socket object of the descriptor, made the first time it is asked for."""
        if self._sock is None:
            self._sock = self._socket_of(self._fd)
        return self._sock

    def _ask_socket(self, question):
        try:
            return question(self._socket()) if self._fd >= 0 else None
        except OSError:
            return None

    def _stop_watching(self) -> None:
        if self._watching:
            self._watching = False
            self._first_bytes.unwatch(self._fd)

    def _close_socket(self, exc=None) -> None:
        if self._watching:  # (_stop_watching's test, here: a call less per connection)
            self._stop_watching()
        fd, sock = self._fd, self._sock
        self._fd, self._sock = -1, None
        if sock is not None:
            sock.close()
        elif fd >= 0:
            os.close(fd)
        self._loop.call_soon(self._lost, exc)

    def _lost(self, exc) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.connection_lost(exc)


# (what the compiled set-up and close of a connection read of its transport: protocol/_accepted.c,
# whose references are copy_for, serve, settle, close, _close_socket and _lost)
if compiled("set_accepted_type") is not None:
    compiled("set_accepted_type")(AcceptedTransport)


class _HandOver(asyncio.Protocol):
    """The protocol the loop's new transport is made with: at its ``connection_made`` it hands
    the transport the connection's own protocol, and what waited."""

    __slots__ = ("accepted",)

    def __init__(self, accepted: AcceptedTransport):
        self.accepted = accepted

    def __call__(self) -> "_HandOver":
        return self  # (its own factory, for connect_accepted_socket)

    def connection_made(self, transport) -> None:
        accepted, self.accepted = self.accepted, None
        accepted._attach(transport)


class FirstBytes:
    """Waits for the first bytes of the clients accepted before they sent any, on one epoll
    of its own that the loop watches: one system call a client (its registration, one-shot:
    it is spent once it has told, and goes with the descriptor's close), where the loop's
    ``add_reader`` costs a handle made and closed (measured on uvloop: 4.8 µs, with its calls). Under load most clients are accepted so: a client's
    request follows its connect by a few microseconds, and the listener takes the connect
    at once. Linux only (``select.epoll``); elsewhere ``make`` gives None, and such a client
    goes to the loop's transport. It lives as long as its loop: a graceful stop still waits
    for the first bytes of the clients accepted before it."""

    __slots__ = ("_loop", "_epoll", "_callbacks")

    @classmethod
    def make(cls, loop) -> "FirstBytes | None":
        return cls(loop) if hasattr(select, "epoll") else None

    def __init__(self, loop):
        self._loop = loop
        self._epoll = select.epoll()
        self._callbacks: dict = {}  # descriptor -> what to call when it is readable
        loop.add_reader(self._epoll.fileno(), self._ready)

    def watch(self, fd: int, callback) -> None:
        """Call ``callback()`` once, when ``fd`` is readable (bytes, its end, or an error)."""
        try:
            self._epoll.register(fd, _ONE_READ)
        except FileExistsError:  # (watched before, and told: its spent registration is armed again)
            self._epoll.modify(fd, _ONE_READ)
        self._callbacks[fd] = callback

    def unwatch(self, fd: int) -> None:
        if self._callbacks.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def _ready(self) -> None:
        try:
            events = self._epoll.poll(0)
        except OSError:  # (closed meanwhile)
            return
        callbacks = self._callbacks
        for fd, _ in events:
            callback = callbacks.pop(fd, None)
            if callback is None:
                continue
            try:
                callback()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - one client's failure must not stop the others'
                self._loop.call_exception_handler({"message": "Error reading a new connection's first bytes",
                                                   "exception": exc})
