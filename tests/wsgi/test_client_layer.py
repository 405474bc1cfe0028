"""The client layer of the WSGI environ (client, scheme, Host), kept per connection and made
again when any of them changes from one request to the next (WSGIConnection.client_environ)."""

import asyncio
import json

from test_response_spool import QuietLog, read_all, tcp_pair

from server.protocol.forwarded import AllowList, ProxyPolicy
from server.protocol.server import ServerConfig
from server.wsgi.environ import base_environ
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIServerHttpProtocol

SEEN = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "REMOTE_ADDR")


def view(environ, start_response):
    body = json.dumps([environ.get(name) for name in SEEN]).encode() + b"\n"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def answers(requests: list[bytes], proxy=None) -> list[list]:
    """What the app saw of each request, all sent on one TCP connection, one after another."""
    async def main():
        loop = asyncio.get_running_loop()
        pool = ThreadPool(loop, 1)
        environ = base_environ(multithread=True, multiprocess=False, file_wrapper=None)
        wsgi = WSGIConfig(app=view, pool=pool, environ=environ, log=QuietLog())
        protocol = WSGIServerHttpProtocol(wsgi, ServerConfig(log=QuietLog(), proxy=proxy), loop=loop)
        ours, theirs = tcp_pair()
        await loop.connect_accepted_socket(lambda: protocol, ours)
        theirs.sendall(b"".join(requests[:-1]) + requests[-1].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        raw = await asyncio.to_thread(read_all, theirs)
        theirs.close()
        pool.shutdown()
        return raw

    raw = asyncio.run(main())
    return [json.loads(line) for line in raw.split(b"\r\n\r\n")[1:] for line in [line.split(b"\n")[0]]]


def test_each_request_sees_its_own_host():
    seen = answers([b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", b"GET / HTTP/1.1\r\nHost: b.example:8080\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: b.example:8080\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"])
    assert [s[:3] for s in seen] == [["a.example", "a.example", "80"], ["b.example:8080", "b.example", "8080"],
                                     ["b.example:8080", "b.example", "8080"], ["a.example", "a.example", "80"]]
    assert {s[4] for s in seen} == {"127.0.0.1"}


def test_each_request_sees_its_own_forwarded_scheme_and_client():
    """Behind a trusted proxy each request brings its own client and scheme, with the same Host."""
    proxy = ProxyPolicy(AllowList("*"), secure_scheme_headers=(("X-Forwarded-Proto", "https"),),
                        proxy_headers="x-forwarded")
    host = b"GET / HTTP/1.1\r\nHost: a.example\r\n"
    seen = answers([host + b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
                    host + b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
                    host + b"X-Forwarded-For: 10.0.0.1\r\n\r\n",
                    host + b"X-Forwarded-For: 10.0.0.2\r\n\r\n",
                    host + b"\r\n"], proxy=proxy)
    assert [(s[3], s[4]) for s in seen] == [("https", "10.0.0.1"), ("https", "10.0.0.1"), ("http", "10.0.0.1"),
                                            ("http", "10.0.0.2"), ("http", "127.0.0.1")]
