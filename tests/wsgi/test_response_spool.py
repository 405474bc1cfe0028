"""The WSGI response spool in process (server/wsgi/spool.py), on a real socket pair: a small
streamed response costs what a plain hand-over did (no temporary file, one or two loop
calls), and a spooled one comes out exact while its app thread is long done."""

import asyncio
import hashlib
import os
import socket
import struct
import threading

from helpers import wait_until
from server.protocol.server import ServerConfig
from server.wsgi.environ import base_environ
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIServerHttpProtocol


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class CountingPool(ThreadPool):
    """The pool, counting the calls its threads make to the loop."""

    loop_calls = 0

    def call_in_loop(self, fn, *args) -> None:
        self.loop_calls += 1
        super().call_in_loop(fn, *args)


def serve(app, tmp_path, **config):
    """A WSGI connection on our end of a socket pair; the client's end (blocking) is returned."""
    loop = asyncio.get_running_loop()
    pool = CountingPool(loop, 1)
    wsgi = WSGIConfig(app=app, pool=pool, environ=base_environ(multithread=True, multiprocess=False, file_wrapper=FileWrapper), log=QuietLog())
    server_config = ServerConfig(log=QuietLog(), spool_dir=str(tmp_path), **config)
    ours, theirs = socket.socketpair()
    protocol = WSGIServerHttpProtocol(wsgi, server_config, loop=loop)
    return pool, protocol, ours, theirs


def spool_files(directory) -> list[str]:
    """This process's open files in ``directory`` (the spool's are unlinked at once)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(1 << 20):
        data += chunk
    return bytes(data)


def test_a_hello_generator_makes_no_spool_file_and_no_extra_loop_call(tmp_path):
    """Pieces handed over while the loop is busy reach it in one call. The loop is held busy
    (by a call queued through the same pool, ahead of the first piece's) until both pieces
    are handed over, so the count does not depend on which thread the scheduler runs first."""
    both_handed = threading.Event()
    pool_box = []

    def hello(environ, start_response):
        pool_box[0].call_in_loop(both_handed.wait, 10)  # the loop waits here, ahead of piece 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"hello "
        yield b"world"
        both_handed.set()  # (this line runs once "world" is handed over)

    async def main():
        pool, protocol, ours, theirs = serve(hello, tmp_path)
        pool_box.append(pool)
        await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, ours)
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = await asyncio.to_thread(read_all, theirs)
        theirs.close()
        pool.shutdown()
        return pool.loop_calls, raw, protocol.config.spool_budget.in_use

    loop_calls, raw, in_use = asyncio.run(main())
    chunks = (b"6\r\nhello \r\n5\r\nworld\r\n", b"b\r\nhello world\r\n")  # (framed apart or coalesced)
    assert any(raw.endswith(b"\r\n\r\n" + c + b"0\r\n\r\n") for c in chunks), raw
    assert both_handed.is_set()
    assert loop_calls - 1 <= 2, loop_calls  # (the holding call) the pieces together, then the end
    assert in_use == 0 and not list(tmp_path.iterdir())


class WritesKept:
    """The connection's real transport, keeping the objects of each ``writelines`` call."""

    def __init__(self, transport):
        self._transport = transport
        self.lines: list[list] = []

    def writelines(self, pieces):
        pieces = list(pieces)
        self.lines.append(pieces)
        self._transport.writelines(pieces)

    def __getattr__(self, name):
        return getattr(self._transport, name)


def test_streamed_pieces_are_written_as_the_app_gave_them(tmp_path):
    """Pieces the loop takes from the spool in one batch go to the transport as the very
    objects the app yielded (no join, no copy), framed as one chunk, with the head and the
    end of the response in the same ``writelines`` (one writev)."""
    all_handed = threading.Event()
    pool_box = []
    pieces = [bytes([65 + i]) * 4096 for i in range(16)]

    def stream(environ, start_response):
        pool_box[0].call_in_loop(all_handed.wait, 10)  # the loop waits here, ahead of piece 1
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        yield from pieces
        all_handed.set()

    async def main():
        pool, protocol, ours, theirs = serve(stream, tmp_path)
        pool_box.append(pool)
        await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, ours)
        kept = protocol.transport = WritesKept(protocol.transport)
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = bytearray()
        while not raw.endswith(b"\r\n0\r\n\r\n"):
            raw += await asyncio.to_thread(theirs.recv, 1 << 20)
        theirs.close()
        pool.shutdown()
        return kept.lines, bytes(raw)

    lines, raw = asyncio.run(main())
    (written,) = lines
    assert written[0].startswith(b"HTTP/1.1 200 OK\r\n") and written[-1].endswith(b"0\r\n\r\n")
    assert sum(1 for piece in written if any(piece is mine for mine in pieces)) == len(pieces)
    assert raw.endswith(b"\r\n\r\n10000\r\n" + b"".join(pieces) + b"\r\n0\r\n\r\n")


def test_a_spooled_response_is_exact_after_its_app_thread_is_done(tmp_path):
    """The client reads nothing until the app is done: 8 MiB in the spool (a file past 64 KiB)."""
    done = threading.Event()
    pieces = [bytes([i]) * 65536 for i in range(128)]

    def big(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(pieces) * 65536))])
        try:
            yield from pieces
        finally:
            done.set()

    async def main():
        pool, protocol, ours, theirs = serve(big, tmp_path, response_spool_memory=65536)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, ours)
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert await asyncio.to_thread(done.wait, 10)  # produced while the client reads nothing
        held = protocol.config.spool_budget.in_use
        files = spool_files(tmp_path)
        raw = await asyncio.to_thread(read_all, theirs)
        theirs.close()
        pool.shutdown()
        return held, files, raw, protocol.config.spool_budget.in_use

    held, files, raw, in_use = asyncio.run(main())
    assert len(files) == 1, files
    assert not spool_files(tmp_path)
    body = raw.partition(b"\r\n\r\n")[2]
    assert held > 4 * 1024 * 1024, held  # most of it waited in the spool
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"".join(pieces)).digest()
    assert in_use == 0


class _MadeWhileTheLoopActs:
    """A BodyHandover that, before the exchange can see it, has the loop run ``act`` (and
    waits until ``done()``): the loop's pause or abort then finds no handover, and the
    handover must take it up."""

    def __init__(self, pool, act, done=lambda: True):
        from server.wsgi import spool

        self.acted = threading.Event()
        self.handover = None  # the one made
        made = self

        class Handover(spool.BodyHandover):
            __slots__ = ()

            def __init__(self, *args):
                super().__init__(*args)
                made.handover = self
                pool.call_in_loop(lambda: (act(), made.acted.set()))
                assert made.acted.wait(10)
                wait_until(done, 10, what="what the loop did, seen by the exchange")

        self.cls = Handover


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Both ends of a TCP connection on 127.0.0.1: (server's, client's)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        theirs = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    return ours, theirs


def test_a_pause_made_while_the_handover_is_made_holds_it(tmp_path, monkeypatch):
    """Spooling off: the first piece waits while the transport is paused, also when the loop
    paused it while the piece's handover was being made; it goes once the transport resumes."""
    produced = threading.Event()

    def stream(environ, start_response):
        start_response("200 OK", [("Content-Length", "10")])
        yield b"hello"  # made with the handover: waits for the resume
        produced.set()
        yield b"world"

    async def main():
        pool, protocol, ours, theirs = serve(stream, tmp_path, response_spool_max=0)
        made = _MadeWhileTheLoopActs(pool, protocol.pause_writing)
        monkeypatch.setattr("server.wsgi.exchange.BodyHandover", made.cls)
        await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, ours)
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert await asyncio.to_thread(made.acted.wait, 10)
        # The app thread waits for room in the handover (past the first piece: spooling is off)
        held = await asyncio.to_thread(wait_until, lambda: made.handover._waiting, 10, 0.01, "the thread waiting")
        held = held and not produced.is_set()
        protocol.resume_writing()
        raw = await asyncio.to_thread(read_all, theirs)
        theirs.close()
        pool.shutdown()
        return held, raw

    held, raw = asyncio.run(main())
    assert held, "the app went on while the transport was paused"
    assert produced.is_set()
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"\r\n\r\nhelloworld"), raw


def test_an_abort_made_while_the_handover_is_made_ends_the_app(tmp_path, monkeypatch):
    """The client resets the connection while the first piece's handover is being made: the
    app is closed at that piece, not left to produce into a spool nobody drains."""
    yielded = []
    closed = threading.Event()

    def endless(environ, start_response):
        start_response("200 OK", [])
        try:
            while True:
                yielded.append(1)
                yield b"x" * 65536
        finally:
            closed.set()

    async def main():
        pool, protocol, ours, theirs = serve(endless, tmp_path)
        ours.close(), theirs.close()
        ours, theirs = tcp_pair()  # (a reset, which a Unix socket has not)
        loop = asyncio.get_running_loop()

        def client_resets():
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            theirs.close()

        made = _MadeWhileTheLoopActs(pool, client_resets, done=lambda: protocol.transport is None)
        monkeypatch.setattr("server.wsgi.exchange.BodyHandover", made.cls)
        await loop.connect_accepted_socket(lambda: protocol, ours)
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        ended = await asyncio.to_thread(closed.wait, 10)
        pool.shutdown()
        return ended

    assert asyncio.run(main()), "the app was never closed"
    assert len(yielded) == 1, len(yielded)
