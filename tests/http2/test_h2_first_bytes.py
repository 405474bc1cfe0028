"""An HTTP/2 connection chosen by its preface in the bytes read at accept keeps only its
own timer: the HTTP/1.1 wait for a first request is not armed once the connection is handed
over (it would close an idle HTTP/2 connection at the header timeout, not at keepalive)."""

import asyncio
import logging
from functools import partial

import pytest

from helpers import connected

h2_connection = pytest.importorskip("h2.connection", reason="HTTP/2 needs the h2 package (the http2 extra)")

import h2.config  # noqa: E402
from gunicorn.config import Config  # noqa: E402
import h2.events  # noqa: E402

from server.asgi.protocol import ASGIConfig, ASGIConnection, ASGIServerHttpProtocol  # noqa: E402
from server.http2.config import H2Settings  # noqa: E402
from server.http2.selection import H2Service, h2_protocol  # noqa: E402
from server.protocol.server import ServerConfig  # noqa: E402
from server.workers.config import proxy_policy_from_gunicorn  # noqa: E402


async def hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"hi"})


def h2_client_request() -> tuple:
    client = h2_connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "t")],
                        end_stream=True)
    return client, client.data_to_send()


def test_a_preface_read_at_accept_leaves_the_connection_to_its_http2_timers():
    async def main():
        loop = asyncio.get_running_loop()
        config = ServerConfig(keepalive=5, head_timeout=0.3, proxy=proxy_policy_from_gunicorn(Config()))  # (trusts h2c)
        asgi = ASGIConfig(app=hello, log=logging.getLogger("test"))
        cls = h2_protocol(ASGIServerHttpProtocol,
                          H2Service.make(partial(ASGIConnection, asgi), config, H2Settings(prior_knowledge=True)))
        proto = cls(asgi, config, loop=loop)
        client, proto.early_data = h2_client_request()
        theirs = await connected(proto)
        assert proto.h2_connection is not None  # handed over by the bytes read at accept
        ended = False
        while not ended:
            events = client.receive_data(await asyncio.wait_for(loop.sock_recv(theirs, 65536), 5))
            ended = any(isinstance(event, h2.events.StreamEnded) for event in events)
        await asyncio.sleep(0.6)  # twice the header timeout, well under keepalive
        assert proto.transport is not None
        with pytest.raises(BlockingIOError):  # nothing to read, and not closed (b"")
            theirs.recv(65536)
        theirs.close()

    asyncio.run(main())
