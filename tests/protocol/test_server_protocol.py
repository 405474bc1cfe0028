"""ServerHttpProtocol on a real socket pair, with a minimal adapter that answers on demand."""

import asyncio
import socket

import pytest
import uvloop

import server.protocol.closing as closing_module
from helpers import connected, wait_for
from server.protocol.server import PIPELINE_BUFFER, ServerConfig, ServerHttpProtocol
from server.protocol.parser import DONE
from server.protocol.rates import NOT_WATCHED
from server.protocol.timers import NO_TIMER
from server.protocol.writer import ResponseWriter


class HeldResponses(ServerHttpProtocol):
    """Records request heads; answers one only when the test says so."""

    def __init__(self):
        super().__init__(ServerConfig(keepalive=5))
        self.heads = []

    def on_request(self, head):
        self.heads.append(head)

    def answer(self):
        head = self.heads[-1]
        writer = ResponseWriter(head.method, head.version, head.keep_alive and self.keep_alive_allowed, b"")
        self.write(writer.head(200, "OK", [], 2) + writer.body(head.path[-2:].encode()))
        self.response_finished(writer.keep_alive)


def test_pipelined_bytes_are_bounded_while_a_request_is_in_flight():
    async def main():
        loop = asyncio.get_running_loop()
        proto = HeldResponses()
        theirs = await connected(proto)
        requests = [b"GET /r%05d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(20000)]  # ~700 KiB
        sender = loop.create_task(loop.sock_sendall(theirs, b"".join(requests)))
        reader = loop.create_task(read_until_closed(loop, theirs, 60))  # the answers are read
        await wait_for(lambda: proto.heads and "pipeline" in proto._read_paused_by)
        # The first request is held; reading stopped soon after the bound was crossed.
        assert len(proto.heads) == 1
        assert PIPELINE_BUFFER < proto._parser.buffered < PIPELINE_BUFFER + 512 * 1024
        assert not sender.done()  # the client is made to wait, not our memory to grow
        # Answering each request lets the next one in, in order.
        for answered in range(len(requests)):
            await wait_for(lambda: len(proto.heads) > answered and proto._head is not None)
            proto.answer()
        await sender
        assert [h.path for h in proto.heads] == [r.split(b" ")[1].decode() for r in requests]
        assert not proto._read_paused_by
        proto.transport.close()
        data, _ = await reader
        assert data.count(b"HTTP/1.1 200 ") == len(requests)
        theirs.close()

    asyncio.run(main())


def test_a_body_that_comes_with_its_head_is_neither_timed_nor_watched():
    """A body whole in the read that brought its head starts no body timer and no rate watch;
    one that is not gets both until its end comes."""

    async def main():
        loop = asyncio.get_running_loop()
        proto = HeldResponses()
        theirs = await connected(proto)
        await loop.sock_sendall(theirs, b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        await wait_for(lambda: proto.heads and proto._parser.state == DONE)
        assert proto._timer.phase is None and proto._body_rate is NOT_WATCHED and not proto._body_pending
        proto.answer()
        await loop.sock_sendall(theirs, b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
        await wait_for(lambda: len(proto.heads) == 2)
        assert proto._timer.phase == "body" and proto._body_rate._active and proto._body_pending
        await loop.sock_sendall(theirs, b"world")
        await wait_for(lambda: proto._parser.state == DONE)
        assert proto._timer.phase is None and not proto._body_rate._active and not proto._body_pending
        proto.transport.close()
        theirs.close()

    asyncio.run(main())


def test_a_pipelined_request_waits_while_the_client_does_not_read_the_answers():
    """The next request is not started while the transport is paused for writing: a client
    that pipelines and never reads gets no more of our buffer than one answer's worth."""

    async def main():
        loop = asyncio.get_running_loop()
        proto = HeldResponses()
        theirs = await connected(proto)
        await loop.sock_sendall(theirs, b"GET /r1 HTTP/1.1\r\nHost: t\r\n\r\nGET /r2 HTTP/1.1\r\nHost: t\r\n\r\n")
        await wait_for(lambda: proto.heads)
        proto.pause_writing()  # as the transport does when its buffer is full
        proto.answer()
        await asyncio.sleep(0.1)
        assert [h.path for h in proto.heads] == ["/r1"]  # /r2 waits
        proto.resume_writing()
        await wait_for(lambda: len(proto.heads) == 2)
        assert proto.heads[1].path == "/r2"
        proto.transport.close()
        theirs.close()

    asyncio.run(main())


class Upgrades(ServerHttpProtocol):
    """Answers every request with 101 and hands the connection to an echoing receiver."""

    def __init__(self):
        super().__init__(ServerConfig(keepalive=5))
        self.received = bytearray()
        self.lost = None
        self.closing_called = False

    def on_request(self, head):
        self.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        leftover = self.upgrade(self)
        if leftover:
            self.data_received(leftover)

    # the receiver side
    def data_received(self, data):
        if self._upgraded is None:
            return super().data_received(data)
        self.received += data
        self.transport.write(data.upper())

    def eof_received(self):
        if self._upgraded is None:
            return super().eof_received()
        return False

    def connection_lost(self, exc):
        if self._upgraded is not None and self.lost is None:
            self.lost = exc or "closed"
        super().connection_lost(exc)

    def closing(self):
        if self._upgraded is not None and not self.closing_called:
            self.closing_called = True
            self.transport.write(b"BYE")
            self.close()
            return
        super().closing()


def test_upgrade_hands_over_the_bytes_after_the_head():
    async def main():
        loop = asyncio.get_running_loop()
        proto = Upgrades()
        theirs = await connected(proto)
        # Bytes that follow the head in the same packet belong to the new protocol.
        await loop.sock_sendall(theirs, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nabc")
        got = b""
        while not got.endswith(b"ABC"):
            got += await loop.sock_recv(theirs, 4096)
        assert got.startswith(b"HTTP/1.1 101 ")
        await loop.sock_sendall(theirs, b"GET / HTTP/1.1\r\n\r\n")  # not HTTP any more
        got = b""
        while not got.endswith(b"\r\n\r\n"):
            got += await loop.sock_recv(theirs, 4096)
        assert got == b"GET / HTTP/1.1\r\n\r\n".upper()
        assert bytes(proto.received) == b"abcGET / HTTP/1.1\r\n\r\n"
        proto.closing()  # graceful shutdown goes to the receiver
        rest = b""
        while chunk := await loop.sock_recv(theirs, 4096):
            rest += chunk
        assert rest == b"BYE"
        await wait_for(lambda: proto.lost is not None)
        theirs.close()

    asyncio.run(main())


class Streams(ServerHttpProtocol):
    """Writes a large body in pieces, awaiting drain() between them."""

    def __init__(self, total, piece=64 * 1024):
        super().__init__(ServerConfig(keepalive=5))
        self.total, self.piece = total, piece
        self.written = 0
        self.paused_seen = 0
        self.task = None
        self.error = None

    def on_request(self, head):
        self.task = self.loop.create_task(self.respond())

    async def respond(self):
        self.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.total)
        try:
            while self.written < self.total:
                self.write(b"x" * self.piece)
                self.written += self.piece
                if self.writing_paused:
                    self.paused_seen += 1
                await self.drain()
        except ConnectionResetError as exc:
            self.error = exc
            return
        self.response_finished(True)


def test_drain_holds_the_writer_while_the_client_does_not_read():
    async def main():
        loop = asyncio.get_running_loop()
        proto = Streams(total=64 * 1024 * 1024)
        theirs = await connected(proto)
        await loop.sock_sendall(theirs, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await wait_for(lambda: proto.paused_seen > 0)
        await asyncio.sleep(0.2)
        held = proto.written
        await asyncio.sleep(0.2)
        assert proto.written == held  # the writer waits for the client
        assert held < 16 * 1024 * 1024
        received = 0
        while received < proto.total:
            chunk = await loop.sock_recv(theirs, 1 << 20)
            assert chunk
            received += len(chunk)
        await proto.task
        assert proto.written == proto.total and proto.error is None
        theirs.close()

    asyncio.run(main())


def test_drain_raises_connection_reset_when_the_client_leaves():
    async def main():
        loop = asyncio.get_running_loop()
        proto = Streams(total=1024 * 1024 * 1024)
        theirs = await connected(proto)
        await loop.sock_sendall(theirs, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await wait_for(lambda: proto.paused_seen > 0)
        theirs.close()
        await asyncio.wait_for(proto.task, 5)
        assert isinstance(proto.error, ConnectionResetError)
        assert proto.written < proto.total

    asyncio.run(main())


class AppOwnsTheResponse(HeldResponses):
    """Its app is running when the body fails, so it answers the error itself (when the test says so)."""

    def __init__(self):
        super().__init__()
        self.errors = []

    def on_request(self, head):
        super().on_request(head)
        return self

    def feed_data(self, data, end_of_chunk=False):
        pass

    def feed_eof(self, trailers=None):
        pass

    def set_exception(self, exc):
        self.errors.append(exc)
        return True


def test_bytes_after_a_rejected_request_are_dropped_not_buffered():
    """Reading pauses on the error, but bytes may still come (a transport reading
    already, bytes read at accept): with the framing lost, none is kept."""
    async def main():
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        proto = AppOwnsTheResponse()
        await loop.connect_accepted_socket(lambda: proto, ours)
        proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        proto.data_received(b"zz\r\n")  # not a chunk size: the body fails while the app runs
        assert [e.status for e in proto.errors] == [400]
        assert "error" in proto._read_paused_by
        before = proto._parser.buffered
        for _ in range(64):
            proto.data_received(b"x" * 65536)  # 4 MiB the client would have us hold
        after = proto._parser.buffered
        proto.transport.close()
        theirs.close()
        return before, after

    before, after = asyncio.run(main())
    assert after == before <= 4


async def read_until_closed(loop, sock, timeout: float) -> tuple[bytes, float]:
    """Everything ``sock`` receives until the peer closes, and when that was (loop time)."""
    data = b""
    async def read():
        nonlocal data
        while chunk := await loop.sock_recv(sock, 65536):
            data += chunk
    await asyncio.wait_for(read(), timeout)
    return data, loop.time()


def test_after_the_clients_eof_only_its_last_pipelined_request_closes_the_connection():
    """A client that pipelines two requests and shuts its sending side: both are answered,
    the first keeping the connection alive (another request waits), the last with
    ``Connection: close``, after which the connection is closed."""
    async def main():
        loop = asyncio.get_running_loop()
        proto = HeldResponses()
        theirs = await connected(proto)
        await loop.sock_sendall(theirs, b"GET /r1 HTTP/1.1\r\nHost: t\r\n\r\nGET /r2 HTTP/1.1\r\nHost: t\r\n\r\n")
        theirs.shutdown(socket.SHUT_WR)
        await wait_for(lambda: proto._peer_eof)
        assert proto.keep_alive_allowed  # /r2 is still to come
        proto.answer()
        await wait_for(lambda: len(proto.heads) == 2 and proto._head is not None)
        assert not proto.keep_alive_allowed
        proto.answer()
        data, _ = await read_until_closed(loop, theirs, 5)
        first, second = data.split(b"r1", 1)
        assert first.startswith(b"HTTP/1.1 200 ") and b"Connection: close" not in first
        assert second.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in second
        assert second.endswith(b"r2")
        theirs.close()

    asyncio.run(main())


def test_a_body_with_broken_framing_ends_the_connection_after_the_apps_answer():
    """The bytes after a bad chunk size are no request: the app's answer says
    ``Connection: close`` and nothing after it is read as a request."""
    async def main():
        loop = asyncio.get_running_loop()
        proto = AppOwnsTheResponse()
        theirs = await connected(proto)
        await loop.sock_sendall(theirs, b"POST /b1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        b"5\r\nhello\r\n")
        await wait_for(lambda: proto.heads)  # the app has the request: the body's error is its to answer
        await loop.sock_sendall(theirs, b"zz\r\nGET /r2 HTTP/1.1\r\nHost: t\r\n\r\n")
        await wait_for(lambda: proto.errors)
        assert [error.status for error in proto.errors] == [400]
        assert not proto.keep_alive_allowed
        proto.answer()
        data, _ = await read_until_closed(loop, theirs, 5)
        assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in data and data.endswith(b"b1")
        assert [head.path for head in proto.heads] == ["/b1"]
        theirs.close()

    asyncio.run(main())


def test_lingering_after_a_rejected_request_ends_at_the_linger_timeout(monkeypatch):
    """After its 400 the connection is half-closed and the client's further bytes drained;
    a client that keeps trickling them is cut off after LINGER_TIMEOUT (well under
    LINGER_LIMIT bytes: the time bound is the one crossed here)."""
    monkeypatch.setattr(closing_module, "LINGER_TIMEOUT", 0.5)

    async def main():
        loop = asyncio.get_running_loop()
        proto = HeldResponses()
        theirs = await connected(proto)
        started = loop.time()
        await loop.sock_sendall(theirs, b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\n")
        data, _ = await read_until_closed(loop, theirs, 5)  # our side's EOF: the half-close
        assert data.startswith(b"HTTP/1.1 400 ") and not proto.heads
        sent = 0
        with pytest.raises(OSError):  # the full close: a send fails
            for _ in range(100):  # 10 s of a byte every 0.1 s, unless the server closes first
                await asyncio.sleep(0.1)
                await loop.sock_sendall(theirs, b"x")
                sent += 1
        assert sent >= 3 and 0.5 <= loop.time() - started < 3, (sent, loop.time() - started)
        theirs.close()

    asyncio.run(main())


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("grace, served_before", [("FIRST_REQUEST_GRACE", False), ("NEXT_REQUEST_GRACE", True)],
                         ids=["fresh", "keep-alive"])
def test_an_idle_connection_gets_a_grace_when_the_worker_stops(run, grace, served_before, monkeypatch):
    """On graceful stop a connection without a request in progress may still send one (a
    fresh client's first, or a keep-alive client's next, sent as soon as it has read a
    response): it is answered, with Connection: close. One that stays silent is closed
    when the grace ends."""
    monkeypatch.setattr(closing_module, grace, 0.5)

    async def main():
        loop = asyncio.get_running_loop()
        protos = [HeldResponses(), HeldResponses()]
        late, silent = [await connected(proto) for proto in protos]
        if served_before:
            for proto, sock in zip(protos, (late, silent)):
                await loop.sock_sendall(sock, b"GET /r1 HTTP/1.1\r\nHost: t\r\n\r\n")
                await wait_for(lambda: proto.heads)
                proto.answer()
                data = b""
                while not data.endswith(b"r1"):
                    data += await loop.sock_recv(sock, 65536)
        started = loop.time()
        for proto in protos:
            proto.closing()
        await asyncio.sleep(0.1)  # the request comes a moment after the stop began
        await loop.sock_sendall(late, b"GET /r2 HTTP/1.1\r\nHost: t\r\n\r\n")
        await wait_for(lambda: len(protos[0].heads) == 1 + served_before)
        protos[0].answer()
        data, _ = await read_until_closed(loop, late, 5)
        assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in data and data.endswith(b"r2")
        data, closed_at = await read_until_closed(loop, silent, 5)
        assert data == b"" and 0.5 <= closed_at - started < 3, closed_at - started
        late.close()
        silent.close()

    run(main())


@pytest.mark.parametrize("early", [b"", b"GET /r1 HTTP/1.1\r\nHo", b"GET /r1 HTTP/1.1\r\nHost: t\r\n\r\n"],
                         ids=["nothing", "half-a-head", "a-whole-request"])
def test_the_first_request_read_at_accept_arms_no_timer_and_a_late_one_gets_head_timeout(early):
    """A connection whose first request came whole with its accept needs no timer until its
    answer; one that got nothing yet, or half a head, still has ``head_timeout`` for the rest:
    closed silently, or answered 408, when it is crossed."""

    async def main():
        loop = asyncio.get_running_loop()
        proto = HeldResponses()
        proto.config = ServerConfig(keepalive=5, head_timeout=0.3)
        proto.early_data = early
        started = loop.time()
        theirs = await connected(proto)
        if early.endswith(b"\r\n\r\n"):
            assert [head.path for head in proto.heads] == ["/r1"] and proto._timer is NO_TIMER  # (none made)
            await asyncio.sleep(0.5)  # past head_timeout: nothing times out while it is answered
            proto.answer()
            assert proto._timer.phase == "keepalive" and proto.transport is not None
            data = await loop.sock_recv(theirs, 65536)
            assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"r1")
        else:
            if early:
                assert proto._timer.phase == "head"
            else:  # (timed with every new connection's first wait: no timer of its own)
                assert proto._timer is NO_TIMER and proto in proto.config.first_waits
            data, closed_at = await read_until_closed(loop, theirs, 5)
            assert data.startswith(b"HTTP/1.1 408 ") if early else data == b""
            assert 0.3 <= closed_at - started < 2, closed_at - started
        theirs.close()

    asyncio.run(main())


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_new_connections_first_wait_is_timed_with_the_others_until_it_makes_its_own_timer(run):
    """A connection that got nothing at accept waits in the worker's ``FirstWaits``, not on a
    timer of its own. It leaves them as it makes one (half a head) or is lost: they hold no
    more than the connections open. One whose request came after its accept and is still
    being answered at the end of that wait is not closed by it."""

    async def main():
        loop = asyncio.get_running_loop()
        config = ServerConfig(keepalive=5, head_timeout=0.3)
        protos = [HeldResponses() for _ in range(3)]
        for proto in protos:
            proto.config = config
        half, whole, gone = [await connected(proto) for proto in protos]
        assert all(proto in config.first_waits and proto._timer is NO_TIMER for proto in protos)
        await loop.sock_sendall(half, b"GET /r1 HTTP/1.1\r\nHo")
        await loop.sock_sendall(whole, b"GET /r2 HTTP/1.1\r\nHost: t\r\n\r\n")
        gone.close()
        await wait_for(lambda: protos[0]._timer.phase == "head" and protos[1].heads and protos[2].transport is None)
        assert protos[0] not in config.first_waits and protos[2] not in config.first_waits
        await asyncio.sleep(0.5)  # past the first wait of all three
        assert protos[1].transport is not None and protos[1] not in config.first_waits
        protos[1].answer()
        data = await loop.sock_recv(whole, 65536)
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"r2")
        data, _ = await read_until_closed(loop, half, 5)
        assert data.startswith(b"HTTP/1.1 408 ")
        half.close()
        whole.close()

    run(main())


def test_an_error_page_that_closes_a_whole_request_closes_at_once():
    """A request read to its end and answered with an error page and ``Connection: close``
    leaves nothing of the client's to drain: the connection closes at once, without the
    half-close linger of a request whose body may still be on its way."""

    async def main():
        loop = asyncio.get_running_loop()
        proto = HeldResponses()
        theirs = await connected(proto)
        await loop.sock_sendall(theirs, b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        await wait_for(lambda: proto.heads)
        proto.handle_error(500, close=True)
        assert proto._linger_left == 0  # (not half-closed and draining)
        assert proto.transport is None or proto.transport.is_closing()
        data, _ = await read_until_closed(loop, theirs, 5)
        assert data.startswith(b"HTTP/1.1 500 ") and b"Connection: close\r\n" in data
        theirs.close()

    asyncio.run(main())
