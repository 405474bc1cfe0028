"""The client layer of the WSGI environ (client, scheme, Host), kept per connection and made
again when any of them changes from one request to the next (WSGIConnection.client_environ)."""

import asyncio
import json
import socket

from test_response_spool import QuietLog, read_all, tcp_pair

from server.protocol.forwarded import AllowList, ProxyPolicy
from server.protocol.server import ServerConfig
from server.wsgi.environ import base_environ
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import SERVER_ENVIRONS, WSGIConfig, WSGIServerHttpProtocol

SEEN = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "REMOTE_ADDR", "REMOTE_PORT")


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


def test_a_request_that_forwards_after_one_that_did_not():
    """The peer's own client and scheme, kept for the connection once a request forwarded
    nothing, do not stand for a later request that forwards."""
    proxy = ProxyPolicy(AllowList("*"), secure_scheme_headers=(("X-Forwarded-Proto", "https"),),
                        proxy_headers="x-forwarded")
    host = b"GET / HTTP/1.1\r\nHost: a.example\r\n"
    forwarding = host + b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
    seen = answers([host + b"\r\n", forwarding, host + b"\r\n"], proxy=proxy)
    assert [(s[3], s[4]) for s in seen] == [("http", "127.0.0.1"), ("https", "10.0.0.1"), ("http", "127.0.0.1")]


def test_an_untrusted_peer_forwards_nothing():
    """From a peer outside forwarded_allow_ips, forwarding fields change nothing: the first
    request of a connection, and one after a request that forwarded nothing."""
    proxy = ProxyPolicy(AllowList("192.0.2.1"), secure_scheme_headers=(("X-Forwarded-Proto", "https"),),
                        proxy_headers="x-forwarded")
    host = b"GET / HTTP/1.1\r\nHost: a.example\r\n"
    forwarding = host + b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
    seen = answers([forwarding, host + b"\r\n", forwarding], proxy=proxy)
    assert [(s[3], s[4]) for s in seen] == [("http", "127.0.0.1")] * 3


def served(connections: list[tuple["Accepted", list[bytes]]]) -> tuple[list[list[list]], WSGIConfig]:
    """What the app saw of each request of each connection (an ``Accepted``, and the client's
    requests, sent one after another), all served by one worker's WSGIConfig; and that config."""
    async def main():
        loop = asyncio.get_running_loop()
        pool = ThreadPool(loop, 1)
        environ = base_environ(multithread=True, multiprocess=False, file_wrapper=None)
        wsgi = WSGIConfig(app=view, pool=pool, environ=environ, log=QuietLog())
        raws = []
        for accepted, requests in connections:
            protocol = WSGIServerHttpProtocol(wsgi, ServerConfig(log=QuietLog()), loop=loop)
            theirs = accepted.theirs
            await loop.connect_accepted_socket(lambda: protocol, accepted.sock)
            last = requests[-1].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            theirs.sendall(b"".join(requests[:-1]) + last)
            raws.append(await asyncio.to_thread(read_all, theirs))
            theirs.close()
        pool.shutdown()
        return raws, wsgi

    raws, wsgi = asyncio.run(main())
    seen = [[json.loads(part.split(b"\n")[0]) for part in raw.split(b"\r\n\r\n")[1:]] for raw in raws]
    return seen, wsgi


class Accepted:
    """A connection accepted on ``listener``: the server's socket and the client's."""

    def __init__(self, listener: socket.socket):
        self.theirs = socket.create_connection(listener.getsockname())
        self.sock, _ = listener.accept()


def test_connections_to_one_address_share_its_server_layer():
    """Three clients of one listening address, with the same Host: one server layer for the
    three (made once), and each its own client address."""
    request = b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        accepted = [Accepted(listener) for _ in range(3)]
        ports = [str(a.theirs.getsockname()[1]) for a in accepted]
        seen, wsgi = served([(a, [request, request]) for a in accepted])
    assert [[s[1:5] for s in conn] for conn in seen] == [[["a.example", "80", "http", "127.0.0.1"]] * 2] * 3
    assert [conn[0][5] for conn in seen] == ports and [conn[1][5] for conn in seen] == ports
    assert len(wsgi.server_environs) == 1


def test_each_listening_address_has_its_own_server_layer():
    """Without a Host (HTTP/1.0), the server's name and port are the listening address's."""
    request = b"GET / HTTP/1.0\r\n\r\n"
    with socket.create_server(("127.0.0.1", 0)) as one, socket.create_server(("127.0.0.1", 0)) as other:
        connections = [(Accepted(listener), [request]) for listener in (one, other, one)]
        wanted = [str(listener.getsockname()[1]) for listener in (one, other, one)]
        seen, wsgi = served(connections)
    assert [conn[0][1:3] for conn in seen] == [["127.0.0.1", port] for port in wanted]
    assert len(wsgi.server_environs) == 2


def test_the_server_layers_kept_are_bounded_and_each_request_sees_its_own_host():
    """A client naming a new Host in each request: the worker keeps at most SERVER_ENVIRONS
    layers (emptied when full), and every request still sees the Host it named."""
    hosts = [f"h{i}.example" for i in range(SERVER_ENVIRONS + 44)]
    requests = [f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for host in hosts]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        seen, wsgi = served([(Accepted(listener), requests)])
    assert [s[1] for s in seen[0]] == hosts
    assert 0 < len(wsgi.server_environs) <= SERVER_ENVIRONS
