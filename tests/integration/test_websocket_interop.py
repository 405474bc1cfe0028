"""WebSocket interoperability: native ``WebSocketResponse`` handlers (tests/apps/ws_app.py)
served by a real gunicorn AsyncWorker, talked to by the ``websockets`` client (and the
aiohttp client), and by a raw client for frames real clients refuse to send."""

import asyncio
import itertools
import os
import signal

import aiohttp
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus

from helpers import Gunicorn, connect as tcp_connect, read_response
from server.websocket import MsgType, Opcode
from ws_support import RawClient, masked, upgrade_request

MiB = 1024 * 1024
_keys = itertools.count()


@pytest.fixture(scope="module")
def server():
    with Gunicorn("ws_app:app") as srv:
        yield srv


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_url(server, path):
    return f"ws://127.0.0.1:{server.port}{path}"


def client(server, path, compression="deflate", **kwargs):
    kwargs.setdefault("max_size", None)
    return connect(ws_url(server, path), compression=compression, proxy=None, **kwargs)


def new_key():
    return f"k{os.getpid()}-{next(_keys)}"


def observed(server, key):
    return httpx.get(f"{server.base_url}/observed/{key}", timeout=10).json()


# -- echo through the websockets client ---------------------------------------------------

@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_of_every_size(server, compression):
    async def main():
        async with client(server, "/echo", compression) as ws:
            assert ("Sec-WebSocket-Extensions" in ws.response.headers) == (compression is not None)
            for size in (0, 125, 126, 64 * 1024, 16 * MiB):
                # random bytes do not compress: 16 MiB of them would make deflate the slow part
                binary = os.urandom(size) if compression is None or size < MiB else b"abcdefghij" * (size // 10)
                await ws.send(binary)
                assert await ws.recv() == binary
                text = ("é" * size)[: size // 2]
                await ws.send(text)
                assert await ws.recv() == text

    run(main())


def test_deflate_refused_by_the_server_is_not_used(server):
    async def main():
        async with client(server, "/echo?compress=0") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send("plain")
            assert await ws.recv() == "plain"

    run(main())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_fragmented_messages(server, compression):
    async def main():
        async with client(server, "/echo", compression) as ws:
            await ws.send(["frag", "", "mented ✓"])
            assert await ws.recv() == "fragmented ✓"
            chunks = [os.urandom(70000) for _ in range(3)]
            await ws.send(chunks)
            assert await ws.recv() == b"".join(chunks)

    run(main())


def test_aiohttp_client_echo_and_json(server):
    async def main():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(server, "/echo")) as ws:
                await ws.send_str("from aiohttp")
                assert await ws.receive_str() == "from aiohttp"
                await ws.send_bytes(b"\x00\x01")
                assert await ws.receive_bytes() == b"\x00\x01"
            async with session.ws_connect(ws_url(server, "/json")) as ws:
                await ws.send_json({"a": [1, 2]})
                assert await ws.receive_json() == {"got": {"a": [1, 2]}}

    run(main())


# -- control frames and closing ----------------------------------------------------------

def test_client_ping_is_answered(server):
    async def main():
        async with client(server, "/echo") as ws:
            latency = await asyncio.wait_for(await ws.ping(b"are you there"), 10)
            assert latency >= 0

    run(main())


def test_manual_ping_and_pong_with_autoping_off(server):
    key = new_key()

    async def main():
        async with client(server, f"/manual-ping?key={key}", ping_interval=None) as ws:
            await asyncio.wait_for(await ws.ping(b"from-client"), 10)  # the handler's pong
            await ws.send("sync")
            assert await ws.recv() == "sync"

    run(main())
    assert sorted(observed(server, key)) == [["ping", "from-client"], ["pong", "from-server"]]


def test_heartbeat_pings_keep_an_answering_client_connected(server):
    key = new_key()

    async def main():
        # every=1: a ping each second, its pong due within half a second
        async with client(server, f"/heartbeat?every=1&key={key}", ping_interval=None) as ws:
            for i in range(5):  # past two heartbeats and their pong timeouts
                await asyncio.sleep(0.5)
                await ws.send(f"beat {i}")
                assert await ws.recv() == f"beat {i}"

    run(main())
    assert observed(server, key)[0][:2] == ["end", 1000]


def test_heartbeat_without_pong_fails_with_1011(server):
    key = new_key()

    async def main():
        raw = await RawClient.connect(server.port, upgrade_request(f"/heartbeat?every=0.3&key={key}"))
        assert raw.status == 101
        ping = await raw.receive()
        assert ping.type == MsgType.PING
        close = await raw.receive_close()  # never answered: the pong timeout (every / 2) fails it
        assert close.data == 1011
        assert await raw.eof()
        raw.close()

    run(main())
    end = observed(server, key)[0]
    assert end[:2] == ["end", 1011] and "Keep-alive ping timeout" in end[2]


def test_client_initiated_close(server):
    key = new_key()

    async def main():
        async with client(server, f"/client-closes?key={key}") as ws:
            await ws.close(4001, "client done")
        assert ws.close_code == 4001 and ws.close_reason == "client done"  # echoed

    run(main())
    assert observed(server, key) == [["CLOSE", 4001, "client done"], ["after", "CLOSED"]]


def test_server_initiated_close(server):
    key = new_key()

    async def main():
        async with client(server, f"/server-closes?key={key}") as ws:
            await ws.send("close please")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 4000 and info.value.rcvd.reason == "server says bye"

    run(main())
    assert observed(server, key) == [["closed", True, 4000, False]]


def test_handler_returning_without_close_closes_with_1000(server):
    async def main():
        async with client(server, "/returns-open") as ws:
            assert await ws.recv() == "bye"
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1000

    run(main())


def test_handler_failing_after_upgrade_closes_the_connection(server):
    async def main():
        async with client(server, "/fails") as ws:
            await ws.send("boom")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1011  # internal error, not a normal close
        async with client(server, "/echo") as ws:  # the worker serves on
            await ws.send("still fine")
            assert await ws.recv() == "still fine"

    run(main())


def test_receive_timeout_type_errors_and_receiving_past_the_end(server):
    key = new_key()

    async def main():
        async with client(server, f"/misuse?key={key}") as ws:
            assert await ws.recv() == "timed out"  # the handler's receive gave up first
            await ws.send("text, not bytes")
            await ws.close(1000)

    run(main())
    assert observed(server, key) == ["timeout", "TypeError", "TypeError", "TypeError",
                                     ["CLOSE", "CLOSED", "CLOSED", "CLOSED", "CLOSED", "RuntimeError"]]


# -- failures ----------------------------------------------------------------------------

def test_oversize_message_rejected_with_1009(server):
    key = new_key()

    async def main():
        async with client(server, f"/echo?max=65536&key={key}", compression=None) as ws:
            await ws.send(b"x" * 65536)
            assert await ws.recv() == b"x" * 65536
            await ws.send(b"x" * 65537)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1009

    run(main())
    assert observed(server, key) == [["error", 1009], ["end", 1009]]


@pytest.mark.parametrize("frame, code", [
    pytest.param(masked(Opcode.TEXT, b"caf\xc3"), 1007, id="invalid-utf8"),
    pytest.param(masked(Opcode.TEXT, b"\xf0\x9f", fin=False) + masked(Opcode.CONTINUATION, b"\x28"), 1007,
                 id="invalid-utf8-across-fragments"),
    pytest.param(b"\x82\x03abc", 1002, id="unmasked"),
    pytest.param(masked(Opcode.BINARY, b"", rsv1=False)[:1].replace(b"\x82", b"\xa2") + masked(Opcode.BINARY)[1:],
                 1002, id="rsv2"),
])
def test_raw_protocol_errors(server, frame, code):
    async def main():
        raw = await RawClient.connect(server.port, upgrade_request("/echo"))
        assert raw.status == 101
        raw.send(frame)
        close = await raw.receive_close()
        assert (close.type, close.data) == (MsgType.CLOSE, code)
        assert await raw.eof()
        raw.close()

    run(main())


@pytest.mark.parametrize("request_bytes, status, header", [
    (upgrade_request("/echo", version="12"), 426, ("Sec-WebSocket-Version", "13")),
    (upgrade_request("/echo", key="not-base64-of-16"), 400, None),
    (upgrade_request("/echo").replace(b"Connection: Upgrade", b"Connection: keep-alive"), 400, None),
    (b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", 400, None),
])
def test_handshake_refusals_are_http_errors_and_the_connection_lives_on(server, request_bytes, status, header):
    with tcp_connect(server.port, timeout=10) as sock:
        sock.sendall(request_bytes)
        response = read_response(sock)
        assert response.status == status
        if header:
            assert response.header(header[0]) == header[1]
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock).status == 200


def test_other_versions_through_the_websockets_client(server):
    async def main():
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, "/echo"), proxy=None,
                               additional_headers={"Sec-WebSocket-Version": "13"}):
                pass  # pragma: no cover
        assert info.value.response.status_code == 400  # two version fields: malformed

    run(main())


def test_subprotocol_headers_and_cookies_on_the_101(server):
    async def main():
        async with client(server, "/subprotocol", subprotocols=["v1.chat", "v2.chat"]) as ws:
            assert ws.subprotocol == "v2.chat"  # the server's preference
            assert ws.response.headers["X-Ready"] == "True"
            assert ws.response.headers["Set-Cookie"].startswith("session=abc")
            assert await ws.recv() == "v2.chat"
        async with client(server, "/subprotocol") as ws:
            assert ws.subprotocol is None
            assert await ws.recv() == "none"

    run(main())


def test_bytes_right_after_the_handshake_reach_the_websocket(server):
    async def main():
        raw = await RawClient.connect(server.port, upgrade_request("/echo"), extra=masked(Opcode.TEXT, b"eager"))
        assert raw.status == 101
        assert (await raw.receive()).data == "eager"
        raw.close_frame(1000)
        assert (await raw.receive_close()).data == 1000
        raw.close()

    run(main())


# -- graceful shutdown -----------------------------------------------------------------------

def test_graceful_shutdown_sends_1001():
    with Gunicorn("ws_app:app") as srv:
        async def main():
            async with client(srv, "/waits") as ws:
                assert await ws.recv() == "ready"
                srv.signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd.code == 1001
                assert info.value.rcvd.reason == "Server shutting down"

        run(main())
        assert srv.proc.wait(20) == 0
        assert "Graceful timeout" not in srv.log_text()
