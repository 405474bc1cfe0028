"""gunicorn's ``protocol = uwsgi`` served by a real AsyncWorker: what nginx's ``uwsgi_pass``
sends (a uwsgi packet and the body) gets a plain HTTP response, then the connection closes;
a peer outside ``uwsgi_allow_ips`` is closed without an answer; the PROXY protocol with
uwsgi is refused at start."""

import base64
import json
import struct
import subprocess
import sys

import pytest

from helpers import APPS_DIR, WORKER, Gunicorn, connect, parse_responses, read_until_eof

APPS = {"wsgi": "record_apps:wsgi_app", "asgi": "record_apps:asgi_app", "native": "record_apps:native_app"}

# What nginx's uwsgi_params send, for GET /hello?x=1 from a browser.
NGINX_VARS = [
    ("QUERY_STRING", "x=1"), ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""), ("CONTENT_LENGTH", ""),
    ("REQUEST_URI", "/hello?x=1"), ("PATH_INFO", "/hello"), ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"), ("REMOTE_ADDR", "203.0.113.9"),
    ("REMOTE_PORT", "50000"), ("SERVER_PORT", "80"), ("SERVER_NAME", "example.com"),
    ("HTTP_HOST", "example.com"), ("HTTP_USER_AGENT", "test"), ("HTTP_ACCEPT", "*/*"),
]


def uwsgi_packet(uwsgi_vars, modifier1: int = 0) -> bytes:
    """A uwsgi request packet: the 4-byte header, then each var as sized key and value."""
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                    for k, v in ((k.encode("latin-1"), v.encode("latin-1")) for k, v in uwsgi_vars))
    return struct.pack("<BHB", modifier1, len(data), 0) + data


def uwsgi_request(port: int, data: bytes) -> tuple[bytes, bool]:
    """Send a request the way nginx does and read the response until the server closes."""
    with connect(port) as sock:
        sock.sendall(data)
        return read_until_eof(sock)


def response_of(data: bytes):
    """The one HTTP response in ``data``."""
    responses = parse_responses(data)
    assert len(responses) == 1, data
    return responses[0]


@pytest.fixture(scope="module", params=sorted(APPS))
def server(request):
    with Gunicorn(APPS[request.param], "--protocol", "uwsgi") as srv:
        yield srv


def test_each_app_kind_answers_a_uwsgi_request_and_the_connection_closes(server):
    data, closed = uwsgi_request(server.port, uwsgi_packet(NGINX_VARS))
    assert closed, data
    response = response_of(data)
    assert response.status == 200
    assert response.body == b"hello world"
    assert response.header("Connection") == "close"
    assert response.header("Transfer-Encoding") is None


def with_vars(**changed) -> list:
    """NGINX_VARS with some values changed or added."""
    return [(k, changed.pop(k, v)) for k, v in NGINX_VARS] + list(changed.items())


def test_a_body_of_unknown_size_ends_with_the_connection_never_chunked(tmp_path):
    uri = f"/produce?n=2&mark={tmp_path / 'mark'}"
    with Gunicorn("response_apps:app", "--protocol", "uwsgi") as srv:
        data, closed = uwsgi_request(srv.port, uwsgi_packet(with_vars(REQUEST_URI=uri, PATH_INFO="/produce")))
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert b"Connection: close" in head
    assert body == b"z" * (2 * 1024 * 1024)


def test_a_malformed_packet_gets_an_error_and_the_connection_closes(server):
    data, closed = uwsgi_request(server.port, uwsgi_packet(NGINX_VARS, modifier1=5))
    assert closed
    assert response_of(data).status == 501
    packet = uwsgi_packet(NGINX_VARS)
    data, closed = uwsgi_request(server.port, packet[:-3] + b"\xff\xff\x00")  # a var past the packet
    assert closed
    assert response_of(data).status == 400


def test_an_http_request_is_not_served_on_a_uwsgi_listener(server):
    data, closed = uwsgi_request(server.port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed
    assert b"hello world" not in data


def test_a_peer_outside_uwsgi_allow_ips_is_closed_unanswered():
    with Gunicorn(APPS["wsgi"], "--protocol", "uwsgi", "--uwsgi-allow-from", "192.0.2.1") as srv:
        data, closed = uwsgi_request(srv.port, uwsgi_packet(NGINX_VARS))
        assert closed
        assert data == b""
        assert "uwsgi_allow_ips" in srv.log_text()


def test_the_request_the_app_sees_body_headers_and_scheme():
    body = b"x" * 100000
    uwsgi_vars = with_vars(REQUEST_METHOD="POST", CONTENT_LENGTH=str(len(body)), CONTENT_TYPE="text/plain",
                           HTTP_X_TRACE_ID="abc")
    with Gunicorn("echo_app:app", "--protocol", "uwsgi") as srv:
        data, closed = uwsgi_request(srv.port, uwsgi_packet(uwsgi_vars) + body)
    assert closed
    seen = json.loads(response_of(data).body)
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/hello", "x=1")
    assert base64.b64decode(seen["body"]) == body
    headers = dict(seen["headers"])
    assert headers["X_TRACE_ID"] == "abc" and headers["HOST"] == "example.com"
    assert headers["CONTENT_LENGTH"] == str(len(body)) and headers["CONTENT_TYPE"] == "text/plain"
    with Gunicorn("proxy_app:app", "--protocol", "uwsgi") as srv:
        plain = json.loads(response_of(uwsgi_request(srv.port, uwsgi_packet(NGINX_VARS))[0]).body)
        secure = json.loads(response_of(uwsgi_request(srv.port, uwsgi_packet(with_vars(HTTPS="on")))[0]).body)
    assert (plain["wsgi.url_scheme"], secure["wsgi.url_scheme"]) == ("http", "https")
    assert plain["REMOTE_ADDR"] == "127.0.0.1"  # the peer, as in gunicorn: REMOTE_ADDR is not read


def test_uwsgi_with_the_proxy_protocol_is_refused_at_start():
    cmd = [sys.executable, "-m", "gunicorn", "-k", WORKER, "--no-control-socket", "-b", "127.0.0.1:0",
           "--protocol", "uwsgi", "--proxy-protocol", "v1", "--chdir", str(APPS_DIR), APPS["wsgi"]]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "protocol = uwsgi cannot be used with proxy_protocol" in result.stdout + result.stderr
