"""Response paths of the WSGI bridge, against a real gunicorn with AsyncWorker."""

import hashlib
import os
import socket
import time

import pytest

from helpers import Gunicorn, connect, read_response, read_until_eof, wait_until
from response_apps import FILE_SIZE, _FILE


@pytest.fixture(scope="module")
def server():
    with Gunicorn("response_apps:app") as srv:
        yield srv


def get(sock, path: str, method: str = "GET"):
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return read_response(sock, head=method == "HEAD")


def file_digest(offset: int = 0) -> str:
    with open(_FILE, "rb") as f:
        f.seek(offset)
        return hashlib.sha256(f.read()).hexdigest()


def test_short_body_closes_the_connection(server):
    # The client must not be left waiting for 90 bytes that never come: the server closes.
    with connect(server.port) as sock:
        sock.sendall(b"GET /short-body HTTP/1.1\r\nHost: t\r\n\r\n")
        data, eof = read_until_eof(sock, timeout=5)
    assert eof and b"Content-Length: 100\r\n" in data and data.endswith(b"\r\n\r\nonly ten b")


@pytest.mark.parametrize("path", ["/long-body", "/long-list"])  # streamed, and whole at once
def test_long_body_is_truncated_and_logged(server, path):
    warnings = server.log_text().count(f"Response to GET {path} longer than its Content-Length")
    with connect(server.port) as sock:
        resp = get(sock, path)
        assert resp.body == b"12345"
        # The connection stays in sync: the next response parses.
        assert get(sock, "/hello").body == b"hello world"
    wait_until(lambda: server.log_text().count(f"Response to GET {path} longer than its Content-Length")
               == warnings + 1, 5, what="truncation logged")


@pytest.mark.parametrize("path", ["/bad-header", "/bad-header-name", "/hop-by-hop"])
def test_unsafe_response_headers_give_500(server, path):
    with connect(server.port) as sock:
        resp = get(sock, path)
        assert resp.status == 500
        assert b"should not be sent" not in resp.body
        assert resp.header("X-Injected") is None and resp.header("Set-Cookie") is None
        assert get(sock, "/hello").status == 200  # the connection is still usable


@pytest.mark.parametrize("path", ["/str-piece?alone=1", "/str-piece"])  # one piece, and among bytes
def test_a_body_piece_not_bytes_gives_500(server, path):
    with connect(server.port) as sock:
        resp = get(sock, path)
        assert resp.status == 500 and b"not bytes" not in resp.body
        assert get(sock, "/hello").body == b"hello world"


@pytest.mark.parametrize("query, framing", [("", "chunked"), ("?length=13", "13"), ("?length=9", "9")])
def test_a_streamed_body_after_its_first_piece(server, query, framing):
    """The pieces after a generator's first go straight to the hand-over: chunked, within the
    app's Content-Length, cut at it (the connection stays in sync), none for HEAD."""
    with connect(server.port) as sock:
        resp = get(sock, "/stream" + query)
        assert resp.status == 200 and resp.body == b"one,two,three"[:int(framing) if framing.isdigit() else None]
        assert (resp.header("Transfer-Encoding") or resp.header("Content-Length")) == framing
        resp = get(sock, "/stream" + query, method="HEAD")
        assert resp.status == 200 and resp.body == b""
        assert get(sock, "/hello").body == b"hello world"


def test_a_streamed_piece_not_bytes_cuts_the_response(server):
    """A str after the first pieces: too late for a 500, the client sees the chunked body cut
    (no last chunk) and the connection closed; the error is logged."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /stream?bad=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        data, eof = read_until_eof(sock, timeout=5)
    assert eof and data.startswith(b"HTTP/1.1 200 ") and b"one," in data and not data.endswith(b"0\r\n\r\n")
    wait_until(lambda: "response body pieces must be bytes, not str" in server.log_text(), 5, what="error logged")


def test_head_and_204_have_no_body(server):
    with connect(server.port) as sock:
        resp = get(sock, "/hello", method="HEAD")
        assert resp.status == 200 and resp.body == b""
        resp = get(sock, "/no-content")
        assert resp.status == 204 and resp.body == b""
        assert resp.header("Transfer-Encoding") is None and resp.header("Content-Length") is None
        assert get(sock, "/hello").body == b"hello world"


def test_http10_stream_is_delimited_by_close(server):
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        data, eof = read_until_eof(sock)
    assert eof and data.endswith(b"\r\n\r\nhello world")


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("offset", [0, 1000])
def test_file_wrapper_sends_the_file(loop, offset):
    # The asyncio loop sends it with loop.sendfile; uvloop streams it from the app thread.
    with Gunicorn("response_apps:app", env={"ASYNCWORKER_LOOP": loop}) as srv:
        with connect(srv.port) as sock:
            for _ in range(2):  # twice on one connection: framing stays in sync
                resp = get(sock, f"/file?offset={offset}")
                assert resp.status == 200
                assert resp.header("Content-Length") == str(FILE_SIZE - offset)
                assert hashlib.sha256(resp.body).hexdigest() == file_digest(offset)


def test_unix_socket(tmp_path):
    path = str(tmp_path / "server.sock")
    with Gunicorn("response_apps:app", "-b", f"unix:{path}"):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(path)
            assert get(sock, "/hello").body == b"hello world"


def test_slow_reader_blocks_the_app_thread(server, tmp_path):
    """A client that stops reading pauses the app once its response spool is full (64 MiB,
    ASYNCWORKER_RESPONSE_SPOOL_MAX's default, past 1 MiB in a temporary file)."""
    mark = tmp_path / "mark"
    total = 512  # MiB the app would produce
    with connect(server.port, timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET /produce?n={total}&mark={mark} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_until(lambda: mark.exists() and mark.read_text(), 10, what="the app to start producing")
        produced = stalled_value(mark)
        # The spool cap + kernel buffers + the transport's buffer + the hand-off bound.
        assert 64 <= produced < 64 + 32, f"the app produced {produced} MiB while the client read nothing"
        resp = read_response(sock)
    assert resp.status == 200 and len(resp.body) == total * 1024 * 1024


def stalled_value(mark) -> int:
    """The app's progress once it has stopped moving for half a second."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < 0.5:
        value = int(mark.read_text() or 0)
        if value != last:
            last, since = value, time.monotonic()
        time.sleep(0.05)
    return last


@pytest.mark.parametrize("size, on_disk", [(1024, 0), (1025, 1), (3 * 1024 * 1024, 1)])
@pytest.mark.parametrize("chunked", [False, True])
def test_bodies_past_the_spool_threshold_go_to_a_temporary_file(tmp_path, size, on_disk, chunked):
    """In memory up to ASYNCWORKER_SPOOL_THRESHOLD, in tmp_upload_dir past it; closed afterwards."""
    import json

    spool = tmp_path / "spool"
    spool.mkdir()
    body = os.urandom(size)
    if chunked:
        framing, payload = b"Transfer-Encoding: chunked", b"%x\r\n%s\r\n0\r\n\r\n" % (size, body)
    else:
        framing, payload = b"Content-Length: %d" % size, body
    with Gunicorn("response_apps:app", "--worker-tmp-dir", str(tmp_path), f"--env=TMPDIR={spool}",
                  env={"ASYNCWORKER_SPOOL_THRESHOLD": "1024"}) as srv:
        with connect(srv.port) as sock:
            sock.sendall(b"POST /upload?dir=%s HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n%s"
                         % (str(spool).encode(), framing, payload))
            info = json.loads(read_response(sock).body)
            assert info == {"sha": hashlib.sha256(body).hexdigest(), "size": size, "on_disk": on_disk,
                            "content_length": str(size)}
            sock.sendall(b"GET /spooled?dir=%s HTTP/1.1\r\nHost: t\r\n\r\n" % str(spool).encode())
            assert read_response(sock).body == b"0"  # the spool file was closed with the request
