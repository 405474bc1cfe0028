"""The WebSocket opening handshake: request heads parsed by the real request parser."""

import pytest

from helpers import parse_responses
from server.protocol.parser import RequestParser
from server.websocket.handshake import HandshakeError, accept, accept_key, check_request, select_subprotocol

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 s1.3


def head(*lines, method="GET", version="1.1"):
    """A parsed upgrade request; ``lines`` replace the default fields of the same name
    (an empty value removes the field)."""
    defaults = ["Host: example", "Upgrade: websocket", "Connection: Upgrade",
                f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13"]
    names = {line.split(":")[0].lower() for line in lines}
    fields = [d for d in defaults if d.split(":")[0].lower() not in names]
    fields += [line for line in lines if line.split(":", 1)[1].strip()]
    raw = f"{method} /chat HTTP/{version}\r\n" + "".join(f"{f}\r\n" for f in fields) + "\r\n"
    events = RequestParser().feed(raw.encode("latin-1"))
    return events[0]


def test_accept_key_of_the_rfc_example():
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_request_and_101_response():
    request = check_request(head("Sec-WebSocket-Protocol: chat, superchat", "Sec-WebSocket-Protocol: v2",
                                 "Connection: keep-alive, Upgrade", "Upgrade: WebSocket"))
    assert request.key == KEY and request.version == 13
    assert request.subprotocols == ["chat", "superchat", "v2"]
    accepted = accept(request, subprotocol="superchat", headers=[("Set-Cookie", "a=b")], server=b"srv")
    (response,) = parse_responses(accepted.response)
    assert response.status == 101
    assert response.header("Upgrade") == "websocket"
    assert response.header("Connection") == "Upgrade"
    assert response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert response.header("Sec-WebSocket-Protocol") == "superchat"
    assert response.header("Set-Cookie") == "a=b"
    assert response.header("Server") == "srv"
    assert response.header("Sec-WebSocket-Extensions") is None and accepted.deflate is None
    assert response.header("Content-Length") is None


def test_version_8_is_accepted():
    assert check_request(head("Sec-WebSocket-Version: 8")).version == 8


def test_deflate_negotiated_only_when_offered_and_wanted():
    request = check_request(head("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))
    accepted = accept(request)
    (response,) = parse_responses(accepted.response)
    assert response.header("Sec-WebSocket-Extensions") == "permessage-deflate; client_max_window_bits=15"
    assert accepted.deflate is not None
    assert accept(request, compress=False).deflate is None
    assert b"Sec-WebSocket-Extensions" not in accept(request, compress=False).response


def test_subprotocol_selection_follows_the_server_preference():
    assert select_subprotocol(["a", "b"], ["b", "a"]) == "b"
    assert select_subprotocol(["a"], ["c"]) is None
    with pytest.raises(ValueError):
        accept(check_request(head("Sec-WebSocket-Protocol: a")), subprotocol="c")


def test_reserved_or_invalid_extra_headers_are_refused():
    request = check_request(head())
    for bad in [("Sec-WebSocket-Accept", "x"), ("Upgrade", "other"), ("X-Bad", "a\r\nb")]:
        with pytest.raises(Exception):
            accept(request, headers=[bad])


@pytest.mark.parametrize("version", ["12", "14", "7", "0", "abc", "13, 8"])
def test_other_versions_get_426_with_the_supported_version(version):
    with pytest.raises(HandshakeError) as info:
        check_request(head(f"Sec-WebSocket-Version: {version}"))
    assert info.value.status == 426
    assert info.value.headers == [("Sec-WebSocket-Version", "13")]


@pytest.mark.parametrize("kwargs, lines, status", [
    ({"method": "POST"}, ["Content-Length: 0"], 405),
    ({"version": "1.0"}, [], 400),
    ({}, ["Content-Length: 3"], 400),
    ({}, ["Upgrade: "], 400),
    ({}, ["Upgrade: h2c"], 400),
    ({}, ["Connection: keep-alive"], 400),
    ({}, ["Sec-WebSocket-Version: "], 400),
    ({}, ["Sec-WebSocket-Key: "], 400),
    ({}, ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"], 400),  # no padding
    ({}, ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j"], 400),  # 12 bytes
    ({}, ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="], 400),
    ({}, ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q=="], 400),
    ({}, ["Sec-WebSocket-Protocol: a b"], 400),
    ({}, ["Sec-WebSocket-Extensions: permessage-deflate;;"], 400),
])
def test_malformed_requests_are_refused(kwargs, lines, status):
    with pytest.raises(HandshakeError) as info:
        check_request(head(*lines, **kwargs))
    assert info.value.status == status
    if status == 405:
        assert info.value.headers == [("Allow", "GET")]
