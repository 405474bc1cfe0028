"""What a connection writes during one pass of the loop goes out in one transport write (one
system call), never held past that pass, and at once past CORK_LIMIT bytes; the answers of
all the connections of one pass leave together, after the app code that made them."""

import asyncio

import uvloop

from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol.server import CORK_LIMIT, ServerConfig

PIECE = b"x" * 4096


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class CountingTransport:
    """Keeps each write call (``writelines`` as one call, as it is one system call)."""

    def __init__(self):
        self.calls: list[bytes] = []

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data):
        self.calls.append(bytes(data))

    def writelines(self, pieces):
        self.calls.append(b"".join(pieces))

    def is_closing(self):
        return False

    def close(self):
        pass

    def can_write_eof(self):
        return False

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0

    @property
    def body(self) -> bytes:
        """The chunked body written so far, unframed."""
        data = b"".join(self.calls).partition(b"\r\n\r\n")[2]
        out = []
        while data:
            size, _, data = data.partition(b"\r\n")
            n = int(size, 16)
            out.append(data[:n])
            data = data[n + 2:]
        return b"".join(out)


def connection(app, transport):
    loop = asyncio.get_running_loop()
    protocol = ASGIServerHttpProtocol(ASGIConfig(app=app, log=QuietLog()), ServerConfig(log=QuietLog(), keepalive=5),
                                      loop=loop)
    protocol.connection_made(transport)
    return protocol


async def serve(app) -> CountingTransport:
    transport = CountingTransport()
    connection(app, transport).data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    return transport


async def until_ended(transport: CountingTransport) -> None:
    for _ in range(100):
        if transport.calls and transport.calls[-1].endswith(b"0\r\n\r\n"):
            return
        await asyncio.sleep(0)
    raise AssertionError("the response did not end")


def streaming_app(pieces: int, between=None):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(pieces):
            await send({"type": "http.response.body", "body": PIECE, "more_body": True})
            if between is not None:
                await between(i)
        await send({"type": "http.response.body", "body": b""})
    return app


def test_pieces_of_one_pass_go_out_in_one_write():
    async def main():
        transport = await serve(streaming_app(8))
        await until_ended(transport)
        return transport

    transport = uvloop.run(main())
    # The head, the eight pieces and the end in one write: not one write per piece.
    assert len(transport.calls) == 1, [len(c) for c in transport.calls]
    assert transport.calls[0].startswith(b"HTTP/1.1 200 ")
    assert transport.body == PIECE * 8


def test_a_piece_is_never_held_past_its_pass_of_the_loop():
    seen = []

    async def main():
        transport = None

        async def between(i):
            await asyncio.sleep(0)  # the app yields: what it wrote must be out now
            seen.append(transport.body)

        transport = await serve(streaming_app(3, between))
        await until_ended(transport)
        return transport

    transport = uvloop.run(main())
    assert seen == [PIECE, PIECE * 2, PIECE * 3]
    assert transport.body == PIECE * 3


def test_past_the_cork_limit_the_pieces_go_out_at_once():
    pieces = 2 * CORK_LIMIT // len(PIECE) + 3  # more than twice the limit in one pass

    async def main():
        transport = await serve(streaming_app(pieces))
        await until_ended(transport)
        return transport

    transport = uvloop.run(main())
    framed = len(b"1000\r\n") + len(PIECE) + 2
    assert len(transport.calls) >= 3  # at the limit twice, then the rest with the end
    assert all(len(call) <= CORK_LIMIT + framed + 200 for call in transport.calls), [len(c) for c in transport.calls]
    assert transport.body == PIECE * pieces


class NamedTransport(CountingTransport):
    """A CountingTransport that also notes each write in a shared list of events."""

    def __init__(self, name: str, events: list):
        super().__init__()
        self.name = name
        self.events = events

    def write(self, data):
        self.events.append(("write", self.name))
        super().write(data)

    def writelines(self, pieces):
        self.events.append(("write", self.name))
        super().writelines(pieces)


async def until(check) -> None:
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("not reached")


def test_the_answers_of_one_pass_leave_together_after_the_apps_that_made_them():
    events = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        events.append(("answer", scope["path"]))
        await send({"type": "http.response.body", "body": b"ok"})

    async def main():
        names = ("/a", "/b", "/c")
        transports = [NamedTransport(name, events) for name in names]
        protocols = [connection(app, transport) for transport in transports]
        for name, protocol in zip(names, protocols):  # three requests read in one pass
            protocol.data_received(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % name.encode())
        await until(lambda: all(t.calls for t in transports))
        return transports

    transports = uvloop.run(main())
    assert events == [("answer", "/a"), ("answer", "/b"), ("answer", "/c"),
                      ("write", "/a"), ("write", "/b"), ("write", "/c")]
    for transport in transports:
        assert len(transport.calls) == 1 and transport.calls[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.calls[0].endswith(b"\r\n\r\nok")


def test_a_held_answer_is_written_before_the_next_requests_100_continue():
    async def app(scope, receive, send):
        body = b""
        if scope["method"] == "POST":
            body = (await receive())["body"]  # asks for the body: the 100 Continue goes out
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got " + body})

    async def main():
        transport = CountingTransport()
        protocol = connection(app, transport)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                               b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        await until(lambda: b"100 Continue" in b"".join(transport.calls))
        protocol.data_received(b"hello")
        await until(lambda: b"got hello" in b"".join(transport.calls))
        return b"".join(transport.calls)

    wire = uvloop.run(main())
    first = wire.index(b"HTTP/1.1 200 OK")
    assert first < wire.index(b"HTTP/1.1 100 Continue") < wire.index(b"HTTP/1.1 200 OK", first + 1)
    assert wire.index(b"got ") < wire.index(b"100 Continue")


def test_a_lone_request_is_answered_at_once():
    events = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        events.append(("sent", scope["path"]))

    async def main():
        transport = NamedTransport("/", events)
        connection(app, transport).data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await until(lambda: transport.calls)
        return transport

    transport = uvloop.run(main())
    assert events == [("write", "/"), ("sent", "/")]  # written within the app's send, not held
    assert transport.calls[0].endswith(b"\r\n\r\nok")


def test_answers_held_for_a_request_that_waits_go_out_at_the_next_pass():
    events = []
    release = None

    async def app(scope, receive, send):
        if scope["path"] == "/slow":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        events.append(("answer", scope["path"]))
        await send({"type": "http.response.body", "body": b"ok"})

    async def main():
        nonlocal release
        release = asyncio.Event()
        names = ("/a", "/slow", "/b")
        transports = {name: NamedTransport(name, events) for name in names}
        for name in names:  # three requests read in one pass; /slow waits
            connection(app, transports[name]).data_received(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % name.encode())
        await until(lambda: transports["/a"].calls and transports["/b"].calls)
        written_while_waiting = not transports["/slow"].calls
        release.set()
        await until(lambda: transports["/slow"].calls)
        return written_while_waiting

    assert uvloop.run(main())
    assert events == [("answer", "/a"), ("answer", "/b"), ("write", "/a"), ("write", "/b"),
                      ("answer", "/slow"), ("write", "/slow")]


class HalfClosingTransport(CountingTransport):
    """A transport that can shut its write side, and refuses writes after it (as uvloop's)."""

    def __init__(self):
        super().__init__()
        self.eof_written = False

    def can_write_eof(self):
        return True

    def write_eof(self):
        self.eof_written = True

    def write(self, data):
        if self.eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        super().write(data)

    def writelines(self, pieces):
        if self.eof_written:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        super().writelines(pieces)


def test_the_end_of_a_response_after_the_write_side_was_shut_is_dropped():
    async def main():
        started = asyncio.Event()

        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            started.set()
            await asyncio.Event().wait()  # (the test ends the response through the channel)

        transport = HalfClosingTransport()
        protocol = connection(app, transport)
        # A body still to come: closing now lingers (the write side shut, the input drained).
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        await started.wait()
        await until(lambda: transport.calls)
        protocol.close()
        assert transport.eof_written
        protocol.end_response()  # what an app kind calls at the end of a streamed body
        return transport

    transport = uvloop.run(main())
    assert b"".join(transport.calls).endswith(b"4\r\npart\r\n")  # nothing after the shut
