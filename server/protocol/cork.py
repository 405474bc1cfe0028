"""Write coalescing: what a connection writes during one pass of the loop goes out in one
write, and the answers to the requests read in one pass go out together.

    send_body(piece) ────► write_corked ─► [this connection's bytes of this pass]
    whole response,  ────► write_answer ─┘          │
    end of a stream              │                  │
                                 └─ the last answer the pass expects: it and all held, at once
    PassEnd ── otherwise, at the start of the next pass: everything held
    (and at once past CORK_LIMIT, or before any other write, a sendfile or a close)

An app streaming without waiting between its pieces (an ASGI app sending 16
``http.response.body`` messages, a WSGI batch, a native handler's writes) would
make one system call per piece: on uvloop a write to an empty transport buffer
is sent at once. Held, they go in one ``writev`` (``writelines``: no copy on
uvloop).

Under load one pass reads hundreds of requests, and their tasks answer one after
another in the same pass. Written as each app answers, the writes are spread
between the app steps, and each write to a client waiting in ``epoll`` wakes
it; waking a process on another core costs the writer (an inter-processor
interrupt), and a local ``wrk`` woke more often than it read a response. So an
answer is held while other requests read in the same pass have yet to answer,
and the last one writes them all in one burst: one wake-up finds many answers.
A lone request (c=1) is the last of its pass: answered at once, as before.

Nothing waits past the start of the next pass (``PassEnd``'s callback), so a
stream that waits between pieces (server-sent events) is sent as before; flow
control holds within ``CORK_LIMIT`` bytes per connection.

The last answer before a close (``Connection: close``, HTTP/1.0, a graceful
stop) goes out with its FIN in one segment (``send_last``): it is sent with
``MSG_MORE``, so TCP holds it, and the write side is shut at once, which adds
the FIN to it. Sent apart, the answer and the FIN are two packets, each taking
the kernel's whole path through loopback or the network on both ends; behind a
proxy that opens a connection per request, that was a tenth of the worker's
time. The FIN comes from the shutdown, not from the close that follows: a close
with unread input (a client still sending) resets the connection and drops what
TCP holds, where after the shutdown the answer is out first, as it was when
written alone. The loop writes every such answer, and the close follows in the
same call (a WSGI thread writes none itself: lease.py). A whole body written
beside its head (``SEPARATE_BODY``, response.py) and the answers a pass writes
together go as before: among their many segments, the FIN's own is little.
"""

import errno
import os
import socket
import weakref

from .compiled import compiled

CORK_LIMIT = 64 * 1024  # body bytes held back for one write at the end of a loop pass


def send_last_py(fd: int, data: bytes) -> int:
    """Send ``data``, the last bytes before a close, on the non-blocking socket ``fd``: the
    bytes it took (``OSError`` as ``os.write`` raises it, ``BlockingIOError`` when it takes
    none). They go with ``MSG_MORE``, so TCP holds them, and once the socket has taken them
    all its write side is shut, which puts the FIN in their segment. The reference of
    ``_chead.send_last``."""
    if fd < 0:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    # (family, type and protocol given: asked of the descriptor, they would cost two system
    # calls per answer; a send and a shutdown do not depend on them)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fd)
    try:
        sent = sock.send(data, socket.MSG_MORE | socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
        if sent == len(data):
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:  # (a reset client: its transport learns)
                pass
        return sent
    finally:
        sock.detach()


send_last = compiled("send_last") or send_last_py


class WriteCoalescing:
    """Mixed into ``ServerHttpProtocol``; its ``write`` and ``close`` uncork first."""

    __slots__ = ()  # its state is in the connection's slots (``server.py``)

    def _init_cork(self) -> None:
        self._corked: list | None = None  # the pieces of this pass, once there is one
        self._corked_size = 0
        self._uncork_due = False
        self.pass_end = pass_end(self.loop)  # (this loop's: the answers of its passes)

    def write_corked(self, data: bytes, more: bytes = b"") -> None:
        """Write a piece in the middle of a response: the pieces written during one pass of
        the loop (an app streaming without waiting) go out in one write at its end, one
        system call instead of one each; at once past ``CORK_LIMIT`` bytes, or before any
        other write or a close, so the order and the transport's flow control hold.
        ``more``: a piece after it, held as it is (a body beside its head)."""
        if self.transport is None:
            return
        self._response_started = True
        self._continue_pending = False
        corked = self._corked
        if corked is None:  # (a connection holding pieces is in the pass's held already)
            if not self._uncork_due:
                self._uncork_due = True
                self.pass_end.hold(self)
            self._corked = [data, more] if more else [data]
            self._corked_size = len(data) + len(more)
        else:
            corked.append(data)
            if more:
                corked.append(more)
            self._corked_size += len(data) + len(more)
        if self._corked_size >= CORK_LIMIT:
            self._uncork()

    def write_corked_pieces(self, pieces: list, size: int, end: bool = False) -> None:
        """``write_corked`` for several pieces (``size`` bytes), each held as it is (no join; the
        list itself may be held, and grown).
        ``end``: the end of the response follows at once, so they are held past
        ``CORK_LIMIT`` and go in its write."""
        if self.transport is None:
            return
        self._response_started = True
        self._continue_pending = False
        corked = self._corked
        if corked is None:
            if not self._uncork_due:
                self._uncork_due = True
                self.pass_end.hold(self)
            self._corked = pieces
            self._corked_size = size
        else:
            corked += pieces
            self._corked_size += size
        if self._corked_size >= CORK_LIMIT and not end:
            self._uncork()

    def write_answer(self, data: bytes, body: bytes = b"", last: bool = False) -> None:
        """Write the last bytes of a response (a whole one, or the end of a streamed one).

        Held like a piece while requests read in this pass have yet to answer; the last
        answer of the pass goes out at once, and with it every one held before it. ``last``:
        the connection is closed right after (this call's caller closes it), so its FIN
        may go with these bytes."""
        transport = self.transport
        if transport is None or self.write_closed:
            return
        end = self.pass_end
        if end.expected:  # (tasks read in this pass are to answer; none for a WSGI thread's answer)
            end.answered += 1
            if end.answered < end.expected:
                self.write_corked(data, body)
                return
            if not end.held:
                end.expected = end.answered = 0
            elif self._corked is None:
                end.write_all()  # what every other connection holds
            else:  # this connection's pieces too (it is in held): the end goes in their write
                self.write_corked(data, body)
                end.write_all()
                return
        if self._corked is not None:  # this connection's pieces of this pass: the end goes in their write
            self.write_corked(data, body)
            self.uncork()
            return
        # (the common case, inline: nothing held on this connection)
        self._response_started = True
        self._continue_pending = False
        if self.writing_paused:
            self._written_while_paused += len(data) + len(body)
        if body:
            transport.writelines((data, body))  # (uvloop: one writev, the body not copied)
        elif last:
            self._write_last(transport, data)
        else:
            transport.write(data)

    def _write_last(self, transport, data: bytes) -> None:
        """Write the bytes the close that follows ends the connection with: on the socket
        itself, when nothing waits in the transport's buffer, with the FIN in their segment
        (``send_last``, see the module's docstring); else through the transport."""
        fd = self.socket_fd
        if fd is not None and fd >= 0 and not transport.get_write_buffer_size() and not transport.is_closing():
            try:
                sent = send_last(fd, data)
            except OSError:  # (full, or the client is gone: the transport writes, and learns which)
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def uncork(self) -> None:
        """Write what is held now (before bytes that go by another way: sendfile)."""
        if self._corked is not None:
            self._uncork()

    def _uncork(self, last: bool = False) -> None:
        """Write what is held; ``last``: the connection is being closed (``close``), and
        these bytes go with its FIN."""
        pieces, self._corked = self._corked, None
        transport = self.transport
        if transport is None or self.write_closed:
            return
        if self.writing_paused:
            self._written_while_paused += self._corked_size
        if last:
            self._write_last(transport, pieces[0] if len(pieces) == 1 else b"".join(pieces))
        elif len(pieces) == 1:
            transport.write(pieces[0])
        else:
            transport.writelines(pieces)  # (uvloop: one writev, no copy)


class PassEnd:
    """One loop's answers of the current pass: how many its requests are expected to give,
    how many were given, and the connections holding bytes.

    ``expected`` counts the request tasks made as the pass read their requests (they take
    their first step later in the same pass, see ``ServerHttpProtocol.start_task``);
    ``answered`` the answers written since. The last expected answer writes them all: a
    lone request (c=1) is answered at once, as without holding. When some request does not
    answer in its first step (it waits on something), a callback scheduled by the first
    connection that held writes what is held at the start of the next pass, and the counts
    start again from zero (that pass's answers then go out as they come). An answer nobody
    expected (a WSGI thread's, an error page) finds ``answered >= expected``: out at once.
    """

    __slots__ = ("held", "_handle", "expected", "answered")

    def __init__(self):
        self.held: list = []  # the connections holding bytes
        self._handle = None  # the callback that writes what is held, once something is
        self.expected = 0
        self.answered = 0

    def hold(self, connection: WriteCoalescing) -> None:
        held = self.held
        if not held:
            self._handle = connection.loop.call_soon(self._pass_ended)
        held.append(connection)

    def write_all(self) -> None:
        """The last expected answer came: write what every connection holds."""
        self.expected = self.answered = 0
        handle = self._handle
        if handle is not None:
            self._handle = None
            handle.cancel()
            write_held(self)

    def _pass_ended(self) -> None:
        self._handle = None
        self.expected = self.answered = 0
        write_held(self)

    def _write_held(self) -> None:
        """What every connection held writes (compiled: ``write_held``, below)."""
        held, self.held = self.held, []
        for connection in held:
            connection._uncork_due = False
            try:
                if connection._corked is not None:
                    connection._uncork()
            except Exception as exc:  # (one transport's failure must not hold the others' bytes)
                connection.loop.call_exception_handler({
                    "message": "Writing at the end of a loop pass failed", "exception": exc,
                    "protocol": connection})


# PassEnd._write_held, compiled (_answer.c): its reference, which runs for a subclass of PassEnd,
# or for a connection whose class the C declines (see server.py's answer_whole).
write_held = compiled("write_held") or PassEnd._write_held


# One PassEnd per loop (a worker has one; tests make many), found fast for the last one.
_pass_ends: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_last: tuple = (lambda: None, None)  # (a weak reference to a loop, its PassEnd)


def pass_end(loop) -> PassEnd:
    """The ``PassEnd`` of ``loop``."""
    global _last
    last_loop, end = _last
    if last_loop() is not loop:
        end = _pass_ends.get(loop)
        if end is None:
            end = _pass_ends[loop] = PassEnd()
        _last = (weakref.ref(loop), end)
    return end
