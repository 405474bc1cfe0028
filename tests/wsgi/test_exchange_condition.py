"""A WSGI connection makes the condition its responses' hand-overs wait on only when one
needs it: a whole response never does (making one costs 8.5k instructions, a hello
request 108.5k), a streamed one does; either thread may be first, and both get the same one."""

import asyncio
import threading

from helpers import connected
from server.protocol.server import ServerConfig, ServerHttpProtocol
from server.wsgi.environ import base_environ
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIConnection


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/stream":
        return (piece for piece in (b"str", b"eam"))  # no length: its pieces are handed over one by one
    return [b"whole"]


async def answer(loop, sock, path: str) -> bytes:
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    data = b""
    while not data.endswith((b"whole", b"0\r\n\r\n")):
        data += await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
    return data


def dechunked(response: bytes) -> bytes:
    rest = response.split(b"\r\n\r\n", 1)[1]
    body = b""
    while True:
        size, rest = rest.split(b"\r\n", 1)
        if int(size, 16) == 0:
            return body
        body, rest = body + rest[:int(size, 16)], rest[int(size, 16) + 2:]


def test_only_a_streamed_response_makes_the_connections_condition():
    async def main():
        loop = asyncio.get_running_loop()
        environ = base_environ(multithread=True, multiprocess=False, file_wrapper=FileWrapper)
        wsgi = WSGIConfig(app=app, pool=ThreadPool(loop, 2), environ=environ, log=QuietLog())
        proto = ServerHttpProtocol(ServerConfig(keepalive=5), lambda channel: WSGIConnection(wsgi, channel))
        sock = await connected(proto)
        for _ in range(3):
            assert (await answer(loop, sock, "/")).endswith(b"\r\n\r\nwhole")
        assert proto.app.made_condition is None
        data = await answer(loop, sock, "/stream")
        assert dechunked(data) == b"stream"
        condition = proto.app.made_condition
        assert isinstance(condition, threading.Condition)
        assert (await answer(loop, sock, "/stream")).endswith(b"0\r\n\r\n")
        assert proto.app.made_condition is condition  # one per connection
        sock.close()
        wsgi.pool.shutdown()

    asyncio.run(main())


def test_threads_asking_at_once_get_one_condition():
    for _ in range(20):
        connection = WSGIConnection.__new__(WSGIConnection)
        connection.made_condition = None
        start = threading.Barrier(8)
        got = []

        def ask():
            start.wait()
            got.append(connection.exchange_condition)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(got) == 8 and all(condition is got[0] for condition in got)
