"""A socket lease: an app thread writes its whole response itself.

    loop, at dispatch:  lease = channel.lease_socket()       a dup of the socket's descriptor, or None
    app thread:         n = lease.write(channel, head + body) the bytes the socket took, or -1: not now
    loop, after:        channel.whole_written(head, rest, size, lease)  the rest, the record, the next
                        request; the lease is kept for the connection's next response

A WSGI response normally goes back to the loop to be written: the thread wakes the
loop (an eventfd write), and the client waits for the loop to be scheduled, poll,
and run the hand-off. A response whose head and body are known at once (a list
body, the common case) is written by its thread instead, the moment the app has
returned; the loop is still told, to write what the socket did not take, log the
request and go on to the next one, but the client no longer waits for it.

Why this is safe:

* Only while nothing else writes: the thread writes only if the transport's buffer
  is empty, nothing is corked, no response has started and the write side is
  open; it marks the response started first, so the loop's own late writes on this
  request (a 100 Continue, an error page) stand back. While an app runs, the loop
  writes nothing else on its connection (the next pipelined request waits for this
  response's end, which comes after the thread's write).
* Never on another connection's socket: the loop may close the socket at any time
  (the client went away), and a closed descriptor's number is soon reused by a new
  connection. The lease is the thread's own descriptor of the same socket (a dup
  made on the loop, while the transport is open), so a late write reaches this
  connection's socket or fails; the thread closes it when the exchange ends.
* Only on plain sockets (TCP or unix): never through TLS or any other transport.

A lease is at most one descriptor per running app thread, and one kept a worker: a
response its thread wrote gives its lease back to the loop (``whole_written``), which keeps
it for that connection's next response (``ResponseChannel._keep_lease``). A client that sends
a request at a time on one connection so costs no dup and no close a request. The worker keeps
one, its last connection's (``LeaseKeeper``): a lease kept by another connection lets the
first's go, and so does the connection's close, before the transport's (a descriptor left open
on the socket would hold back its FIN). The WSGI kind takes one
only for an exchange dispatched while no other is unanswered (``WSGIConfig.dispatched``
and ``answers``, wsgi/protocol.py): under load the loop is awake anyway and writes the answers of one
pass over the sockets together, and a lease would cost a dup and a close per request. Nor
for a response the connection closes after: the loop writes that one, and the close's FIN
goes in its segment (cork.py).
"""

import os

from .compiled import compiled

# The write: os.write, or the same in C without letting go of the GIL (the thread would
# otherwise wait for it again behind the busy loop thread after each response).
send_now = compiled("send_now") or os.write

# Transports whose bytes go straight to their socket, each write after the ones before.
PLAIN_TRANSPORTS = frozenset({("uvloop.loop", "TCPTransport"), ("uvloop.loop", "UnixTransport"),
                              ("asyncio.selector_events", "_SelectorSocketTransport")})


def plain_socket_fd(transport) -> int:
    """The descriptor of ``transport``'s socket when it writes to it in plain (-1 otherwise)."""
    kind = type(transport)
    if (kind.__module__, kind.__name__) not in PLAIN_TRANSPORTS:
        return -1
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else -1


class SocketLease:
    """An app thread's own descriptor of its connection's socket, for one response."""

    __slots__ = ("fd",)

    def __init__(self, fd: int):
        self.fd = fd

    def write(self, channel, data: bytes) -> int:
        """App thread: write ``data`` (a whole response) if nothing else writes on the
        connection; the bytes the socket took (0 to ``len(data)``), or -1 when the loop must
        write it all. Never blocks."""
        transport = channel.transport
        if (transport is None or channel.write_closed or channel._response_started or channel.writing_paused
                or channel._corked is not None or transport.is_closing() or transport.get_write_buffer_size()):
            return -1
        channel._response_started = True  # (the loop's 100 Continue and error pages stand back)
        try:
            return send_now(self.fd, data)
        except OSError:  # full, or the client is gone: the loop writes it, and learns which
            return 0

    def release(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class LeaseKeeper:
    """Which connection of a worker keeps a lease between its responses (loop thread only)."""

    __slots__ = ("channel",)

    def __init__(self):
        self.channel = None
