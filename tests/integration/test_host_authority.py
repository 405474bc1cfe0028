"""The Host of a request through a real gunicorn, for every app kind (RFC 9112 s3.2
and s3.2.2): a Host that is not ``host[:port]`` is a 400 and a close, and an
absolute-form target's authority replaces the Host field for WSGI, ASGI and native
apps alike. The check is the parser's (``server/protocol/host.py``), so each kind
reads the same settled value."""

import json
import struct

import pytest

from helpers import Gunicorn, connect, read_response, read_until_eof

KINDS = {"wsgi": "host_apps:wsgi_app", "asgi": "host_apps:asgi_app", "native": "host_apps:native_app"}


@pytest.fixture(scope="module", params=sorted(KINDS))
def server(request):
    with Gunicorn(KINDS[request.param], env={"ASYNCWORKER_APP_KIND": request.param}) as srv:
        srv.kind = request.param
        yield srv


def exchange(port: int, request: bytes):
    """The response to ``request``, and whether the server then closed the connection."""
    with connect(port, timeout=10) as sock:
        sock.sendall(request)
        response = read_response(sock)
        _, closed = read_until_eof(sock, timeout=3)
        return response, closed


def seen(port: int, request: bytes) -> dict:
    with connect(port, timeout=10) as sock:
        sock.sendall(request)
        response = read_response(sock)
    assert response.status == 200, response
    return json.loads(response.body)


@pytest.mark.parametrize("host", [b"evil.example/x?", b"a:b:c", b"a b", b"user@evil.example",
                                  b"[::1", b"[::1]x", b"[zz]", b"example.com:80x", b":8080",
                                  b"a%zz", b"a\\b", b"example.com:123456"])
def test_a_host_that_is_not_host_port_is_a_400_and_a_close(server, host):
    response, closed = exchange(server.port, b"GET /p HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert response.status == 400
    assert response.body.startswith(b"Invalid Host header")
    assert closed


def test_the_second_request_of_a_connection_is_checked_too(server):
    with connect(server.port, timeout=10) as sock:
        sock.sendall(b"GET /p HTTP/1.1\r\nHost: good.example\r\n\r\n"
                     b"GET /p HTTP/1.1\r\nHost: evil.example/x?\r\n\r\n")
        assert read_response(sock).status == 200
        assert read_response(sock).status == 400


VALID = [("example.com", "example.com", "80"), ("example.com:8080", "example.com", "8080"),
         ("127.0.0.1:81", "127.0.0.1", "81"), ("[::1]:8080", "[::1]", "8080"), ("[2001:db8::1]", "[2001:db8::1]", "80"),
         ("xn--bcher-kva.example", "xn--bcher-kva.example", "80"), ("a%20b", "a%20b", "80")]


@pytest.mark.parametrize("host,name,port", VALID)
def test_valid_hosts_reach_the_app(server, host, name, port):
    view = seen(server.port, f"GET /p HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    if server.kind == "wsgi":
        assert (view["HTTP_HOST"], view["SERVER_NAME"], view["SERVER_PORT"]) == (host, name, port)
    elif server.kind == "asgi":
        assert view["host"] == [host]
    else:
        assert view["host"] == host
        assert view["url"] == f"http://{host}/p"


@pytest.mark.parametrize("version,host_field", [(b"1.1", b"Host: evil.example\r\n"), (b"1.0", b"")])
def test_an_absolute_form_target_replaces_the_host(server, version, host_field):
    request = b"GET http://good.example:8080/p?q=1 HTTP/" + version + b"\r\n" + host_field + b"\r\n"
    view = seen(server.port, request)
    if server.kind == "wsgi":
        assert view["HTTP_HOST"] == "good.example:8080"
        assert (view["SERVER_NAME"], view["SERVER_PORT"]) == ("good.example", "8080")
        assert (view["PATH_INFO"], view["QUERY_STRING"]) == ("/p", "q=1")
        assert view["RAW_URI"] == "http://good.example:8080/p?q=1"  # as sent, as in gunicorn
    elif server.kind == "asgi":
        assert view["host"] == ["good.example:8080"]
        assert (view["path"], view["query_string"]) == ("/p", "q=1")
    else:
        assert view["host"] == "good.example:8080"
        assert view["url"] == "http://good.example:8080/p?q=1"
        assert view["raw_path"] == "/p?q=1"


def test_an_absolute_form_target_without_a_path_is_the_root(server):
    view = seen(server.port, b"GET https://good.example HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    host = {"wsgi": "HTTP_HOST", "asgi": "host", "native": "host"}[server.kind]
    assert view[host] in ("good.example", ["good.example"])


@pytest.mark.parametrize("target", [b"http:///p", b"https://:8080/p", b"http://?q", b"http://[]/p"])
def test_an_absolute_form_target_with_an_empty_host_is_a_400(server, target):
    response, closed = exchange(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: good.example\r\n\r\n")
    assert response.status == 400
    assert closed


def test_a_bad_host_ignored_for_an_absolute_form_target(server):
    """RFC 9112 s3.2.2: the Host field is ignored then, so its value does not matter."""
    view = seen(server.port, b"GET http://good.example/p HTTP/1.1\r\nHost: a:b:c\r\n\r\n")
    assert json.dumps(view).count("good.example") >= 1
    assert "a:b:c" not in json.dumps(view)


def uwsgi_packet(uwsgi_vars: dict) -> bytes:
    """A uwsgi request packet (nginx's uwsgi_pass): the 4-byte header, then sized vars."""
    data = b"".join(struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
                    for k, v in uwsgi_vars.items())
    return struct.pack("<BHB", 0, len(data), 0) + data


@pytest.mark.parametrize("host, uri, status, seen", [
    ("good.example:8080", "/p", 200, "good.example:8080"),
    ("evil.example/x?", "/p", 400, None),
    ("a:b:c", "/p", 400, None),
    ("evil.example", "http://good.example/p", 200, "good.example"),
])
def test_uwsgi_heads_get_the_same_host_checks(host, uri, status, seen):
    """gunicorn's protocol = uwsgi: HTTP_HOST and REQUEST_URI make the same head."""
    packet = uwsgi_packet({"REQUEST_METHOD": "GET", "REQUEST_URI": uri, "SERVER_PROTOCOL": "HTTP/1.1",
                           "HTTP_HOST": host})
    with Gunicorn(KINDS["wsgi"], "--protocol", "uwsgi") as srv, connect(srv.port, timeout=10) as sock:
        sock.sendall(packet)
        response = read_response(sock)
    assert response.status == status
    if seen is not None:
        assert json.loads(response.body)["HTTP_HOST"] == seen


@pytest.mark.parametrize("request_head", [b"GET /p HTTP/1.0\r\n\r\n", b"GET /p HTTP/1.1\r\nHost:\r\n\r\n"])
def test_without_a_host_the_app_gets_the_listening_address(server, request_head):
    """An empty Host is valid (RFC 9112 s3.2); HTTP/1.0 may send none. The native app
    falls back on the listening address (no DNS lookup on the loop), as WSGI's SERVER_NAME."""
    view = seen(server.port, request_head)
    if server.kind == "wsgi":
        assert (view["SERVER_NAME"], view["SERVER_PORT"]) == ("127.0.0.1", str(server.port))
    elif server.kind == "asgi":
        assert view["server"] == ["127.0.0.1", server.port]
    else:
        assert view["host"] == f"127.0.0.1:{server.port}"
        assert view["url"] == f"http://127.0.0.1:{server.port}/p"
