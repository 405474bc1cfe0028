"""The server's h2 connection counts its open streams without a pass over every stream
(server/http2/malformed.py, ``open_inbound_streams``): closed streams are dropped as they
close, and MAX_CONCURRENT_STREAMS still holds exactly. Real h2 connections on both sides,
bytes passed between them in memory."""

import h2.config
import h2.connection
import h2.exceptions
import pytest
from h2.utilities import SizeLimitDict

from server.http2.config import H2Settings
from server.http2.connection import new_h2
from server.protocol.limits import Limits

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

REQUEST = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]


def pair(max_streams: int):
    server = new_h2(H2Settings(max_concurrent_streams=max_streams), Limits())
    server.initiate_connection()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server.receive_data(client.data_to_send())
    server.data_to_send()  # (not read by the client: it sends past the limit, unaware of it)
    return client, server


def open_stream(client, server) -> int:
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, REQUEST, end_stream=True)
    server.receive_data(client.data_to_send())
    return sid


def answer(server, sid: int) -> None:
    server.send_headers(sid, [(":status", "200")], end_stream=True)


def test_a_stream_answered_is_dropped_when_it_closes():
    client, server = pair(100)
    sids = [open_stream(client, server) for _ in range(3)]
    for sid in sids:
        answer(server, sid)
        server.forget_closed(sid)
    assert server.streams == {}
    assert server.open_inbound_streams == 0
    assert set(sids) <= set(server._closed_streams)  # (frames for them still meet "closed")


def test_closed_streams_are_remembered_within_h2s_bound_the_oldest_dropped():
    client, server = pair(100)
    server._closed_streams = SizeLimitDict(size_limit=3)
    sids = [open_stream(client, server) for _ in range(5)]
    for sid in sids:
        answer(server, sid)
        server.forget_closed(sid)
    assert list(server._closed_streams) == sids[2:]
    assert type(server._closed_streams) is SizeLimitDict


def test_a_connection_remembers_the_last_1024_closed_streams():
    client, server = pair(100)
    sids = []
    for _ in range(1100):
        sids.append(open_stream(client, server))
        answer(server, sids[-1])
        server.forget_closed(sids[-1])
    assert list(server._closed_streams) == sids[-1024:]


def test_a_stream_still_open_is_kept():
    client, server = pair(100)
    sid = open_stream(client, server)
    server.forget_closed(sid)
    assert sid in server.streams and server.open_inbound_streams == 1


@pytest.mark.parametrize("forget", [True, False], ids=["dropped-as-closed", "left-to-h2"])
def test_the_concurrency_limit_holds_exactly(forget):
    client, server = pair(2)
    first, second = open_stream(client, server), open_stream(client, server)
    with pytest.raises(h2.exceptions.TooManyStreamsError):
        open_stream(client, server)  # a third while two are open

    client, server = pair(2)
    first, second = open_stream(client, server), open_stream(client, server)
    answer(server, first)
    if forget:
        server.forget_closed(first)
    open_stream(client, server)  # one closed: room for one more
    assert server.open_inbound_streams == 2
