"""An HTTP request's scope is made when its app starts, in the request's task, not as its
head is read: under load one loop pass reads the heads of hundreds of connections before
any of their tasks runs, and what reading a head makes stays alive for the whole pass.

Seen from outside by the scope's copy of the lifespan state: a change made to the state
after the head is read, before the task runs, is in the copy the app gets."""

import asyncio

import uvloop

from helpers import connected
from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol.server import ServerConfig


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def recording_app(scopes: list):
    async def app(scope, receive, send):
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
    return app


async def read_response(sock, loop) -> bytes:
    data = b""
    while not data.endswith(b"ok"):
        data += await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
    return data


def test_the_scope_is_made_by_the_task_not_by_the_read():
    scopes: list = []
    state = {"from_lifespan": 1}

    async def main():
        loop = asyncio.get_running_loop()
        protocol = ASGIServerHttpProtocol(ASGIConfig(app=recording_app(scopes), log=QuietLog(), state=state),
                                          ServerConfig(log=QuietLog(), keepalive=5), loop=loop)
        client = await connected(protocol)
        try:
            protocol.data_received(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: t\r\nX-One: 1\r\n\r\n")
            assert not scopes  # the head is read; the app has not started
            state["after_the_read"] = 2
            return await read_response(client, loop)
        finally:
            client.close()
            protocol.transport.close()

    response = uvloop.run(main())
    assert response.startswith(b"HTTP/1.1 200 ")
    assert len(scopes) == 1
    scope = scopes[0]
    assert (scope["type"], scope["method"], scope["path"], scope["raw_path"], scope["query_string"]) == \
        ("http", "GET", "/a b", b"/a%20b", b"x=1")
    assert scope["headers"] == [(b"host", b"t"), (b"x-one", b"1")]
    assert scope["state"] == {"from_lifespan": 1, "after_the_read": 2} and scope["state"] is not state
