"""A closed connection is freed when its last reference goes, not at the collector's next
pass. A connection and its app kind's object refer to each other, and so do its timer and
it (the timer's callback is a bound method of the connection): each closed connection left
a dozen objects or more (its protocol, parser, timer, the kind's object, its last request's
head) that only a collection frees. Behind a proxy that opens a connection per request
(nginx's default upstream), they piled up between the collector's passes, which the worker
makes rare (``ASYNCWORKER_GC_THRESHOLD``)."""

import asyncio

import pytest

from helpers import Gunicorn, connect, connected, read_response, wait_for
from server.protocol.seam import NO_APP
from server.protocol.timers import GONE_TIMER
from server.protocol.server import ServerConfig, ServerHttpProtocol
from server.protocol.writer import ResponseWriter

CLOSED = 100  # connections of each way of ending
APPS = {"wsgi": "gc_apps:wsgi_app", "asgi": "gc_apps:asgi_app", "native": "gc_apps:web_app"}


def get(port: int, path: str, *headers: str) -> bytes:
    with connect(port, timeout=10) as sock:
        extra = "".join(f"{h}\r\n" for h in headers)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        response = read_response(sock)
        assert response.status == 200, response
        if headers:  # Connection: close: then the server closes
            assert sock.recv(1) == b""
        return response.body


def closed_by_the_client_after_a_request(port: int) -> None:
    with connect(port, timeout=10) as sock:
        sock.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).status == 200


def wait_until_closed(port: int, tries: int = 500) -> None:
    """The worker sees the clients' closes after they made them: ask it how many connections
    it still has open until only the asking one is."""
    for _ in range(tries):
        still_open = int(get(port, "/gc-connections").split()[0])
        if still_open <= 1:
            return
    raise AssertionError(f"{still_open} connections still open")


@pytest.mark.parametrize("kind", sorted(APPS))
def test_closed_connections_leave_nothing_for_the_collector(kind):
    with Gunicorn(APPS[kind], env={"ASYNCWORKER_APP_KIND": kind}) as server:
        assert get(server.port, "/gc-off") == b"off"
        for _ in range(CLOSED):
            get(server.port, "/close", "Connection: close")  # closed by the server, after its answer
        for _ in range(CLOSED):
            closed_by_the_client_after_a_request(server.port)
        for _ in range(CLOSED):
            connect(server.port, timeout=10).close()  # closed by the client before any request
        wait_until_closed(server.port)
        freed = int(get(server.port, "/gc-freed"))
    assert freed == 0, f"a collection freed {freed} of {3 * CLOSED} closed connections"


class Answering(ServerHttpProtocol):
    """Its own app kind; holds an exchange (as the kinds do) while a request waits for ``answer``."""

    def __init__(self):
        super().__init__(ServerConfig(keepalive=5))

    def on_request(self, head):
        self.exchange = head

    def answer(self):
        writer = ResponseWriter("GET", "HTTP/1.1", False, b"")
        self.write(writer.head(200, "OK", [], 0))
        self.response_finished(False)


async def answering_a_request() -> tuple[Answering, object]:
    """An ``Answering`` connection on a socket pair, its request in flight; and the client's end."""
    proto = Answering()
    theirs = await connected(proto)
    theirs.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await wait_for(lambda: proto.exchange is not None)
    return proto, theirs


def test_a_connection_lost_during_a_request_lets_its_app_go_when_the_response_ends():
    async def main():
        proto, theirs = await answering_a_request()
        proto.transport.abort()  # (lost: a half close would still be answered)
        await wait_for(lambda: proto.transport is None)
        theirs.close()
        kept = proto.app  # (the exchange in flight may still call on it)
        proto.answer()
        return kept is proto, proto.app is NO_APP, proto._timer is GONE_TIMER  # (its timer, gone with it)

    assert asyncio.run(main()) == (True, True, True)


def test_a_connection_lost_between_requests_lets_its_app_go_at_once():
    async def main():
        proto, theirs = await answering_a_request()
        proto.answer()  # (Connection: close, from the answer)
        await wait_for(lambda: proto.transport is None)
        theirs.close()
        return proto.app is NO_APP

    assert asyncio.run(main())
