"""The one file sender: part of a regular file as response body, for every app kind.

    channel.send_file(file, offset, count) ──► loop.sendfile (where the loop implements it
                                                and gunicorn's ``sendfile`` is on)
                                          ├──► else os.sendfile on the socket, from the loop
                                          │     (uvloop, which has no loop.sendfile; plain
                                          │     sockets), over spans the page cache holds
                                          └──► else blocks: read on the loop when the page
                                                cache has them (preadv RWF_NOWAIT), else in the
                                                default executor; each written and drained

The loop does not wait on the disk for what it can ask about. What the page cache
holds is sent from the loop, by ``os.sendfile`` or by blocks; a block it does not
hold is read in an executor thread (that read brings the pages after it in too:
the kernel reads ahead), and written through the transport. The cache is asked by
reading one byte without waiting, every ``FILE_BLOCK`` of the span a ``sendfile``
would send: a page missing between two of those still makes ``sendfile`` wait.
A file being served is mostly cached, and a thread hand-off per block cost the
worker a sixth of its time on a 10 MiB file. (asyncio's ``loop.sendfile``, used on asyncio's own
loop, reads in the kernel and may wait on the disk.)

By ``sendfile`` a chunked body gets one chunk for the whole range, by blocks one
per block. A file that ends before ``count`` raises ``FileTooShort`` (the response
then cannot be completed); a client that went away raises ``ConnectionError``.

On uvloop, ``os.sendfile`` goes straight to the connection's socket while the
transport's buffer is empty (what it holds goes first). When the socket is full,
a duplicate of its descriptor is watched for room (the loop refuses a second
watcher on the transport's own descriptor), and the minimum response rate
watches the client as it does a paused transport. A span found cached is not asked
about again as it goes out in several calls.

A TCP connection from this host (a loopback address, or the connection's own local
address) sending a file by ``sendfile`` holds at most ``UNSENT_LIMIT`` bytes queued
behind what is in flight (``TCP_NOTSENT_LOWAT``). Without the option one call queues
megabytes, which the kernel sends as the client's acknowledgements come in, on the core
that takes them: a client on the same host (a proxy, a load generator) then does the
sending's work too, and wrk got a 10 MiB file at half the rate (see "A file's unsent
queue" in benchmarks/README.md). A remote client keeps the deep queue: the sending is
this host's work wherever it is done, and the queue keeps a fast path busy through a
loop's long passes (with the limit a saturated loop refills 128 KiB a pass: a local
download beside a thousand connections' load took two to four times as long).

Such a connection whose congestion control paces it (BBR, ``PACED``) gets Reno's for the
file (``unpace``). Pacing sends each 64 KiB segment from a timer pinned to the core that
queued it, and over loopback that timer's softirq also delivers the segment and wakes the
client: by ``sendfile`` from the loop all of it lands on the worker's core (160 to 190 timer
interrupts per 10 MiB file there, and 120 to 150 wake-ups sent to the client's core). wrk got
a 10 MiB file over loopback at 170 to 210 req/s paced, 590 to 640 with Reno (see "A file to
a client on this host, unpaced" in benchmarks/README.md).
"""

import asyncio
import ipaddress
import mmap
import os
import socket

FILE_BLOCK = 256 * 1024  # bytes read per step when a file cannot go by sendfile
SENDFILE_STEP = 4 << 20  # bytes asked of one os.sendfile at most, and of the cache at once
UNSENT_LIMIT = 128 * 1024  # bytes a connection from this host sending a file by sendfile holds unsent
_TCP = (socket.AF_INET, socket.AF_INET6)
PACED = (b"bbr",)  # congestion controls (names' beginnings) that pace every segment by a timer
PAGE = mmap.PAGESIZE
_NOWAIT = getattr(os, "RWF_NOWAIT", None) if hasattr(os, "preadv") else None  # (Linux)


class FileTooShort(RuntimeError):
    """The file ended before the announced range did."""


def loop_has_sendfile(loop) -> bool:
    """Does ``loop`` implement ``sendfile`` (asyncio's does; uvloop's does not)?"""
    return type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile


def body_span(framing, count: int) -> int:
    """How many of ``count`` file bytes the body still takes (its Content-Length, no body)."""
    if framing.no_body:
        return 0
    if framing.length is not None:
        return max(0, min(count, framing.length - framing.sent))
    return count


async def send_file(channel, framing, file, offset: int, count: int) -> None:
    """Send ``count`` bytes of ``file`` from ``offset`` through ``channel``, framed by ``framing``."""
    if channel.transport is None:
        raise ConnectionResetError("Client disconnected")
    loop_transport = getattr(channel.transport, "loop_transport", None)
    if loop_transport is not None:  # (served on its socket so far: a file needs the loop's, accepted.py)
        await loop_transport()
        if channel.transport is None:
            raise ConnectionResetError("Client disconnected")
    if not channel.config.sendfile:
        await _send_blocks(channel, framing, file.fileno(), offset, count)
    elif loop_has_sendfile(channel.loop):
        await _sendfile(channel, framing, file, offset, count)
    elif (sock := _plain_socket(channel.transport)) is not None:
        await _sendfile_on_socket(channel, framing, sock, file.fileno(), offset, count)
    else:
        await _send_blocks(channel, framing, file.fileno(), offset, count)


def prepare_local_sendfile(sock, count: int) -> None:
    """Before ``count`` bytes of a file go by sendfile on ``sock`` (a plain socket, or None):
    if the file is longer than ``UNSENT_LIMIT`` and ``sock`` is a TCP connection from this
    host, keep at most that many bytes unsent, and stop pacing it (``unpace``). Both stay for
    the connection's later writes: the same holds for them."""
    if count <= UNSENT_LIMIT or sock is None or sock.family not in _TCP:
        return
    try:
        if same_host(sock.getpeername()[0], sock.getsockname()[0]):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, UNSENT_LIMIT)
            unpace(sock)
    except (OSError, AttributeError):  # (gone; or no such option here)
        pass


def unpace(sock) -> None:
    """Give ``sock``, a TCP connection, Reno's congestion control if its own paces every
    segment (``PACED``). Reno is open to every process, and a connection that never leaves
    this host has no congestion to control."""
    if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).startswith(PACED):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")


def same_host(peer: str, local: str) -> bool:
    """Is the peer ``peer`` (an IP address) of a connection to ``local`` on this host: a
    loopback address (an IPv4 one mapped into IPv6 too), or the local address itself?"""
    if peer == local:
        return True
    address = ipaddress.ip_address(peer)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _plain_socket(transport):
    """The transport's socket, if bytes written to it go to the client as they are (not TLS)."""
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return sock if sock is not None and hasattr(sock, "fileno") else None


async def _sendfile_on_socket(channel, framing, sock, fd: int, offset: int, count: int) -> None:
    """``count`` bytes of the file ``fd`` by ``os.sendfile`` on ``sock``, the transport's socket."""
    if framing.chunked:
        channel.write(b"%x\r\n" % count)
    channel.uncork()
    prepare_local_sendfile(sock, count)
    room = _SocketRoom(channel, sock.fileno())
    cached = 0  # bytes from offset on that the page cache was found to hold
    try:
        while count:
            transport = channel.transport
            if transport is None or channel.write_closed:
                raise ConnectionResetError("Client disconnected")
            if transport.get_write_buffer_size():
                await room.wait()  # (the transport's bytes go first)
                continue
            if not cached:
                cached = cached_span(fd, offset, min(count, SENDFILE_STEP))
            if not cached:  # (sendfile would hold the loop on the disk)
                sent = await _copy_uncached_block(channel, fd, offset, min(count, FILE_BLOCK))
                offset += sent
                count -= sent
                framing.sent += sent
                continue
            try:
                sent = os.sendfile(room.sock_fd, fd, offset, cached)
            except (BlockingIOError, InterruptedError):
                await room.wait()
                continue
            except ConnectionError:
                transport.abort()  # (the transport did not see it: it may not be reading)
                raise
            if not sent:
                raise FileTooShort(f"The file ended {count} bytes early")
            offset += sent
            count -= sent
            cached -= sent
            framing.sent += sent
            room.sent(sent)
    finally:
        room.close()
    if framing.chunked:
        channel.write(b"\r\n")


async def _copy_uncached_block(channel, fd: int, offset: int, size: int) -> int:
    """Read a block the page cache does not hold in a thread, and write it as it is (inside
    the body's framing); the bytes written."""
    block = await channel.loop.run_in_executor(None, os.pread, fd, size, offset)
    if not block:
        raise FileTooShort(f"The file ended {size} bytes early")
    if channel.transport is None or channel.write_closed:
        raise ConnectionResetError("Client disconnected")
    channel.write(block)
    return len(block)


class _SocketRoom:
    """Waits for room in a socket the transport owns, on a duplicate of its descriptor,
    with the channel's minimum response rate watching the client meanwhile."""

    __slots__ = ("channel", "sock_fd", "_watched_fd", "_lagging")

    def __init__(self, channel, sock_fd: int):
        self.channel = channel
        self.sock_fd = sock_fd
        self._watched_fd = -1
        self._lagging = False

    async def wait(self) -> None:
        """Until the socket takes more; ConnectionResetError if the connection is lost first."""
        channel = self.channel
        if not self._lagging:
            self._lagging = True
            channel.response_lags()
        if self._watched_fd < 0:
            self._watched_fd = os.dup(self.sock_fd)
        waiter = channel.loss_waiter()
        channel.loop.add_writer(self._watched_fd, _wake, waiter)
        try:
            await asyncio.shield(waiter)
        finally:
            channel.loop.remove_writer(self._watched_fd)

    def sent(self, n: int) -> None:
        if self._lagging:
            self.channel.written_while_lagging(n)

    def close(self) -> None:
        if self._lagging:
            self.channel.response_caught_up()
        if self._watched_fd >= 0:
            self.channel.loop.remove_writer(self._watched_fd)
            os.close(self._watched_fd)
            self._watched_fd = -1


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _sendfile(channel, framing, file, offset: int, count: int) -> None:
    prepare_local_sendfile(_plain_socket(channel.transport), count)
    if framing.chunked:
        channel.write(b"%x\r\n" % count)
    sent = await channel.sendfile(file, offset, count)
    framing.sent += sent
    if sent != count:
        raise FileTooShort(f"The file is shorter than announced ({sent} of {count} bytes)")
    if framing.chunked:
        channel.write(b"\r\n")


async def _send_blocks(channel, framing, fd: int, offset: int, count: int) -> None:
    loop = channel.loop
    end = offset + count
    while offset < end:
        size = min(FILE_BLOCK, end - offset)
        block = read_cached(fd, size, offset)
        if block is None:
            block = await loop.run_in_executor(None, os.pread, fd, size, offset)
        if not block:
            raise FileTooShort(f"The file ended {end - offset} bytes early")
        offset += len(block)
        channel.write(framing.body(block))
        await channel.drain()


def read_cached(fd: int, size: int, offset: int) -> bytearray | None:
    """Up to ``size`` bytes at ``offset`` if the page cache holds them, without waiting on the
    disk; None when it does not (or the system cannot say, or at the end of the file)."""
    if _NOWAIT is None:
        return None
    block = bytearray(size)
    try:
        got = os.preadv(fd, (block,), offset, _NOWAIT)
    except OSError:  # BlockingIOError: not cached; EOPNOTSUPP / EINVAL: no RWF_NOWAIT here
        return None
    if not got:
        return None  # (the blocking read tells the end of the file from a miss)
    if got < size:
        del block[got:]
    return block


def cached_span(fd: int, offset: int, size: int) -> int:
    """How many of the ``size`` bytes at ``offset`` the page cache holds, as far as asking
    for one byte (``preadv`` with ``RWF_NOWAIT``) every ``FILE_BLOCK`` and the last one
    tells: the whole pages before the first miss. ``size`` where the system cannot say."""
    if _NOWAIT is None or size <= 0:
        return size
    probe = bytearray(1)
    end = offset + size
    at = offset
    while True:
        try:
            if not os.preadv(fd, (probe,), at, _NOWAIT):
                return at - offset  # (the file ends there: the read that follows says so)
        except BlockingIOError:
            return max(0, at - at % PAGE - offset)
        except OSError:  # no RWF_NOWAIT for this file
            return size
        if at == end - 1:
            return size
        at = min(at + FILE_BLOCK, end - 1)
