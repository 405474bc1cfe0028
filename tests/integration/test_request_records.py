"""One record per request for every app kind: the access log's atoms and gunicorn's hooks.

The three kinds answer through one response path, so the access log line, its
byte count, its duration and the hooks must be the same whatever kind served
the request (each case here failed for some kind before they shared it).
"""

import base64
import re

import pytest

from helpers import Gunicorn, connect, read_response, wait_until

APPS = {"wsgi": "record_apps:wsgi_app", "asgi": "record_apps:asgi_app", "native": "record_apps:native_app"}
FORMAT = "%(m)s %(U)s %(q)s %(s)s %(b)s %(u)s %(D)s"
BASIC_ALICE = "Basic " + base64.b64encode(b"alice:secret").decode()
HOOKS = '''
def pre_request(worker, req):
    with open({log!r}, "a") as f:
        f.write(f"pre {{req.method}} {{req.path}} {{req.query}} {{dict(req.headers).get('X-TEST')}} "
                f"{{req.remote_addr[0]}}\\n")

def post_request(worker, req, environ, resp):
    with open({log!r}, "a") as f:
        f.write(f"post {{req.path}} {{resp.status}} {{resp.status_code}} {{resp.response_length}} "
                f"{{environ['PATH_INFO']}}\\n")
'''


def served(kind: str, tmp_path, *extra):
    access = tmp_path / "access.log"
    return Gunicorn(APPS[kind], "--access-logfile", str(access), "--access-logformat", FORMAT, *extra), access


def log_lines(access, count: int) -> list[str]:
    return wait_until(lambda: access.exists() and len(access.read_text().splitlines()) >= count
                      and access.read_text().splitlines(), 5, what=f"{count} access log lines")


def get(port: int, target: str, *headers: str):
    with connect(port) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\n{''.join(h + chr(13) + chr(10) for h in headers)}"
                     "Connection: close\r\n\r\n".encode())
        return read_response(sock)


@pytest.mark.parametrize("kind", APPS)
def test_access_log_atoms_are_the_same_for_every_kind(kind, tmp_path):
    """Method, path, query, status, bytes and the Basic auth user (%(u)s)."""
    srv, access = served(kind, tmp_path)
    with srv:
        response = get(srv.port, "/hello?a=1", f"Authorization: {BASIC_ALICE}")
        assert response.status == 200 and response.body == b"hello world"
        (line,) = log_lines(access, 1)
    assert line.rsplit(" ", 1)[0] == "GET /hello a=1 200 11 alice"


@pytest.mark.parametrize("kind", APPS)
def test_an_error_page_is_logged_with_the_bytes_sent(kind, tmp_path):
    srv, access = served(kind, tmp_path)
    with srv:
        response = get(srv.port, "/fail")
        assert response.status == 500
        sent = len(response.body)
        assert sent == int(response.header("Content-Length")) > 0
        (line,) = log_lines(access, 1)
    assert line.rsplit(" ", 1)[0] == f"GET /fail  500 {sent} -"


@pytest.mark.parametrize("kind", APPS)
def test_durations_are_logged_in_microseconds(kind, tmp_path):
    """%(D)s: whole milliseconds (a clock of millisecond resolution) would end in 000 every time."""
    srv, access = served(kind, tmp_path)
    with srv:
        with connect(srv.port) as sock:
            for _ in range(20):
                sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                assert read_response(sock).status == 200
        lines = log_lines(access, 20)
    durations = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert any(d % 1000 for d in durations), durations


@pytest.mark.parametrize("kind", ["asgi", "native"])
def test_a_websocket_session_is_logged(kind, tmp_path):
    """As uvicorn does: one line for the handshake, with its status."""
    srv, access = served(kind, tmp_path)
    with srv:
        with connect(srv.port) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 101"
        (line,) = log_lines(access, 1)
    assert re.fullmatch(r"GET /ws  101 0 - \d+", line), line


@pytest.mark.parametrize("kind", APPS)
def test_request_hooks_run_for_every_kind(kind, tmp_path):
    hooks_log = tmp_path / "hooks.log"
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(HOOKS.format(log=str(hooks_log)))
    srv, _ = served(kind, tmp_path, "-c", str(conf))
    def hook_lines(count):
        return wait_until(lambda: hooks_log.exists() and len(hooks_log.read_text().splitlines()) == count
                          and hooks_log.read_text().splitlines(), 5, what=f"{count} hook lines")

    with srv:
        assert get(srv.port, "/hello?a=1", "X-Test: yes").body == b"hello world"
        hook_lines(2)  # (WSGI's post_request runs on the app thread once the response is handed over)
        assert get(srv.port, "/fail").status == 500
        lines = hook_lines(4)
    assert lines[:2] == ["pre GET /hello a=1 yes 127.0.0.1", "post /hello 200 OK 200 11 /hello"]
    assert lines[2] == "pre GET /fail  None 127.0.0.1"
    assert re.fullmatch(r"post /fail 500 Internal Server Error 500 \d+ /fail", lines[3]), lines[3]
