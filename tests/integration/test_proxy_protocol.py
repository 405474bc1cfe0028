"""The PROXY protocol (gunicorn's ``proxy_protocol`` and ``proxy_allow_ips``) on a real socket."""

import json
import socket
import struct
import time

import pytest

from helpers import Gunicorn, read_response, read_until_eof, wait_until

from server.protocol.proxyprotocol import V2_SIGNATURE

APP = "proxy_app:app"
REQUEST = b"GET /who HTTP/1.1\r\nHost: internal\r\n\r\n"
V1 = b"PROXY TCP4 198.51.100.7 10.0.0.1 51000 443\r\n"
V2 = V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 12) + bytes([203, 0, 113, 5, 10, 0, 0, 1]) + \
    struct.pack("!HH", 52000, 443)


def exchange(port: int, data: bytes, source: str = "127.0.0.1", pieces: int = 1):
    """Send ``data`` (in ``pieces`` writes); return (response or None, whether the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        step = -(-len(data) // pieces)
        for start in range(0, len(data), step):
            sock.sendall(data[start:start + step])
            time.sleep(0.02)
        return _one_response(sock)


def _one_response(sock):
    """The response, or None when the server closed without one."""
    try:
        response = read_response(sock)
    except (ValueError, ConnectionResetError):
        response = None
    if response is not None:
        return response, False
    return None, True


@pytest.fixture(scope="module")
def server():
    with Gunicorn(APP, "--proxy-protocol", "auto", "--proxy-allow-from", "127.0.0.1",
                  "--access-logfile", "-", "--access-logformat", "ACCESS %(h)s %(U)s",
                  # X-Forwarded-For is read too (not by default): the last test checks whose
                  env={"ASYNCWORKER_HEADER_TIMEOUT": "1", "ASYNCWORKER_PROXY_HEADERS": "x-forwarded"}) as gunicorn:
        yield gunicorn


@pytest.mark.parametrize("header, client", [(V1, "198.51.100.7:51000"), (V2, "203.0.113.5:52000")])
@pytest.mark.parametrize("pieces", [1, 3])
def test_proxy_header_gives_the_client_address(server, header, client, pieces):
    response, _ = exchange(server.port, header + REQUEST, pieces=pieces)
    assert response.status == 200
    environ = json.loads(response.body)
    assert f"{environ['REMOTE_ADDR']}:{environ['REMOTE_PORT']}" == client


def test_keep_alive_requests_after_the_header_keep_the_address(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(V1 + REQUEST)
        first = read_response(sock)
        sock.sendall(REQUEST)
        second = read_response(sock)
    assert json.loads(first.body)["REMOTE_ADDR"] == json.loads(second.body)["REMOTE_ADDR"] == "198.51.100.7"


def test_access_log_shows_the_proxied_client(server):
    exchange(server.port, V2 + REQUEST.replace(b"/who", b"/v2-logged"))
    wait_until(lambda: "/v2-logged" in server.log_text(), 10, what="access log line")
    assert "ACCESS 203.0.113.5 /v2-logged" in server.log_text()


def test_local_command_keeps_the_socket_address(server):
    local = V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, 0)
    response, _ = exchange(server.port, local + REQUEST)
    assert json.loads(response.body)["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("data", [
    REQUEST,  # missing: an allowed peer must send the header
    b"PROXY TCP4 198.51.100.7 10.0.0.1 99999 443\r\n" + REQUEST,
    b"PROXY " + b"1" * 120 + b"\r\n" + REQUEST,  # longer than v1's 107 bytes
    V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x12, 12) + bytes(12) + REQUEST,  # UDP
])
def test_bad_or_missing_header_closes_the_connection(server, data):
    response, closed = exchange(server.port, data)
    assert response is None and closed


@pytest.mark.parametrize("line", [
    b"PROXY TCP6 fe80::1%eth0 ::1 51000 443\r\n",  # a zone id (ipaddress takes it)
    b"PROXY TCP6 fe80::1%25eth0 ::1 51000 443\r\n",
    b"PROXY TCP6 198.51.100.7 ::1 51000 443\r\n",  # IPv4 in a TCP6 line
    b"PROXY TCP4 2001:db8::7 10.0.0.1 51000 443\r\n",  # IPv6 in a TCP4 line
    b"PROXY TCP4 198.51.100.07 10.0.0.1 51000 443\r\n",  # a leading zero (octal to some)
    b"PROXY TCP4 198.51.100.7 10.0.0.1\t 51000 443\r\n",
    b"PROXY TCP4 x198.51.100.7 10.0.0.1 51000 443\r\n",
])
def test_proxy_v1_address_that_is_no_plain_literal_closes_the_connection(server, line):
    response, closed = exchange(server.port, line + REQUEST)
    assert response is None and closed


def test_proxy_v1_ipv6_address_reaches_the_app_as_a_plain_literal(server):
    line = b"PROXY TCP6 2001:0db8:0000::0007 ::1 51000 443\r\n"
    response, _ = exchange(server.port, line + REQUEST)
    assert response.status == 200 and json.loads(response.body)["REMOTE_ADDR"] == "2001:db8::7"


def test_incomplete_header_is_dropped_after_the_header_timeout(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(V1[:20])
        started = time.monotonic()
        data, closed = read_until_eof(sock, timeout=8)
    assert closed and data == b""
    assert time.monotonic() - started < 8


def test_peer_outside_proxy_allow_ips_speaks_plain_http(server):
    plain, _ = exchange(server.port, REQUEST, source="127.0.0.2")
    assert plain.status == 200 and json.loads(plain.body)["REMOTE_ADDR"] == "127.0.0.2"
    refused, _ = exchange(server.port, V1 + REQUEST, source="127.0.0.2")
    assert refused is not None and refused.status == 400  # a PROXY line is no request line


def test_proxied_client_is_then_checked_against_forwarded_allow_ips(server):
    # The load balancer says the client is 198.51.100.7, which is no trusted proxy:
    # its X-Forwarded-For is an ordinary header.
    spoof = REQUEST.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
    response, _ = exchange(server.port, V1 + spoof)
    assert json.loads(response.body)["REMOTE_ADDR"] == "198.51.100.7"
    trusted_lb = V1.replace(b"198.51.100.7", b"127.0.0.1")
    response, _ = exchange(server.port, trusted_lb + spoof)
    assert json.loads(response.body)["REMOTE_ADDR"] == "6.6.6.6"


@pytest.mark.parametrize("mode, accepted, refused", [("v1", V1, V2), ("v2", V2, V1)])
def test_version_setting(mode, accepted, refused):
    with Gunicorn(APP, "--proxy-protocol", mode) as gunicorn:
        ok, _ = exchange(gunicorn.port, accepted + REQUEST)
        bad, closed = exchange(gunicorn.port, refused + REQUEST)
    assert ok.status == 200
    assert bad is None and closed
