"""The ASGI websocket scope on AsyncWorker: a Starlette endpoint and raw ASGI apps, with the
``websockets`` client."""

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from helpers import Gunicorn, wait_until


@pytest.fixture(scope="module")
def starlette():
    with Gunicorn("asgi_starlette:app") as server:
        yield server


@pytest.fixture(scope="module")
def raw():
    with Gunicorn("asgi_apps:app", "--websocket-max-message-size", "4096") as server:
        yield server


def ws_url(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


# --- Starlette --------------------------------------------------------------------

def test_starlette_websocket_echo(starlette):
    with ws_connect(ws_url(starlette, "/ws"), open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "echo: hello"
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=10) == b"\x03\x02\x01"
        for i in range(50):  # many messages, compressed (permessage-deflate is negotiated)
            ws.send("x" * 1000 + str(i))
            assert ws.recv(timeout=10) == "echo: " + "x" * 1000 + str(i)
        assert ws.protocol.extensions, "permessage-deflate was not negotiated"
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")


def test_starlette_websocket_denied_with_403(starlette):
    with pytest.raises(InvalidStatus) as denied:
        ws_connect(ws_url(starlette, "/ws-deny"), open_timeout=10)
    assert denied.value.response.status_code == 403


def test_starlette_http_still_served_next_to_websockets(starlette):
    with ws_connect(ws_url(starlette, "/ws"), open_timeout=10) as ws:
        assert httpx.get(starlette.base_url + "/", timeout=10).text == "hello from starlette"
        ws.send("still here")
        assert ws.recv(timeout=10) == "echo: still here"


# --- raw ASGI ---------------------------------------------------------------------

def test_websocket_scope_and_echo_and_disconnect(raw):
    with ws_connect(ws_url(raw, "/ws/scope?a=1"), subprotocols=["chat.v2", "chat.v1"],
                    additional_headers={"X-Custom": "yes"}, open_timeout=10) as ws:
        scope = json.loads(ws.recv(timeout=10))
        assert ws.subprotocol == "chat.v2"
        assert ws.response.headers["x-accepted"] == "1"
        ws.send("round trip")
        assert ws.recv(timeout=10) == "round trip"
        ws.send(b"\x00binary")
        assert ws.recv(timeout=10) == b"\x00binary"
        ws.close(code=1000, reason="client done")
    assert scope["type"] == "websocket"
    assert sorted(scope) == sorted(["asgi", "http_version", "path", "raw_path", "query_string", "root_path",
                                    "headers", "client", "server", "type", "scheme", "subprotocols",
                                    "extensions"])  # no "method"; "state" is not sent back
    assert scope["http_version"] == "1.1"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert (scope["scheme"], scope["path"], scope["raw_path"], scope["query_string"]) == \
        ("ws", "/ws/scope", "/ws/scope", "a=1")
    assert scope["subprotocols"] == ["chat.v2", "chat.v1"]
    assert ["x-custom", "yes"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", raw.port]
    assert scope["extensions"] == ["websocket.http.response"]
    event = _last_event(raw)
    assert event == {"received": "websocket.disconnect", "code": 1000, "reason": "client done",
                     "send": "ClientDisconnected", "done": True}


def _last_event(server) -> dict:
    url = server.base_url + "/last-event"
    wait_until(lambda: httpx.get(url, timeout=10).json().get("done"), 10, what="the app's record")
    return httpx.get(url, timeout=10).json()


def test_denial_response_extension(raw):
    with pytest.raises(InvalidStatus) as denied:
        ws_connect(ws_url(raw, "/ws/deny-response"), open_timeout=10)
    response = denied.value.response
    assert response.status_code == 401
    assert response.headers["x-denied"] == "yes"
    assert response.body == b"not allowed"


@pytest.mark.parametrize("path", ["/ws/raise-before", "/ws/no-answer"])
def test_app_failing_before_accept_gives_500(raw, path):
    with pytest.raises(InvalidStatus) as denied:
        ws_connect(ws_url(raw, path), open_timeout=10)
    assert denied.value.response.status_code == 500


@pytest.mark.parametrize("path, code", [("/ws/raise-after", 1011), ("/ws/return", 1000), ("/ws/close", 4001)])
def test_close_codes(raw, path, code):
    with ws_connect(ws_url(raw, path), open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == code
    if path == "/ws/close":
        assert closed.value.rcvd.reason == "done"


def test_invalid_message_raises_in_the_app(raw):
    with ws_connect(ws_url(raw, "/ws/invalid"), open_timeout=10) as ws:
        assert ws.recv(timeout=10) == ("InvalidMessage: 'websocket.send' needs exactly one of 'text' (str) "
                                       "or 'bytes' (bytes)")


def test_message_size_limit_from_gunicorn_setting(raw):
    with ws_connect(ws_url(raw, "/ws/scope"), open_timeout=10, max_size=None) as ws:
        ws.recv(timeout=10)
        ws.send("y" * 4096)  # at the limit: echoed
        assert ws.recv(timeout=10) == "y" * 4096
        ws.send("y" * 4097)  # past it: closed with 1009
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1009


def test_malformed_handshake_gets_400(raw):
    r = httpx.get(raw.base_url + "/ws/scope", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                      "Sec-WebSocket-Version": "13"}, timeout=10)
    assert r.status_code == 400
