"""The ASGI http scope, body messages, flow control, errors and extensions, on a real gunicorn."""

import json
import socket
import struct
import time

import httpx
import pytest

from server.asgi.body import HIGH_WATER

from helpers import Gunicorn, connect, read_response, read_until_eof, send_and_close_write, wait_until
from sample_data import SAMPLE

APP = "asgi_apps:app"
READ_SIZE = 256 * 1024  # the most one read of the loop's transport delivers (uvloop and asyncio)


@pytest.fixture(scope="module")
def server():
    with Gunicorn(APP, "--access-logfile", "-", env={"SCRIPT_NAME": "/mount"}) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def request(path: str, *headers: str, method: str = "GET", body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(port: int, data: bytes, timeout: float = 10):
    """Send ``data``; return (first response, connection closed by the server after it)."""
    with connect(port, timeout) as sock, sock.makefile("rb") as reader:
        sock.sendall(data)
        response = read_response(reader)
        sock.settimeout(0.5)
        try:
            closed = reader.read(1) == b""
        except (TimeoutError, socket.timeout):
            closed = False
        except ConnectionResetError:
            closed = True
        return response, closed


# --- the scope -------------------------------------------------------------------

def test_http_scope_is_complete(server):
    data = request("/mount/scope/caf%C3%A9%20x?a=1&b=%20", "X-One: 1", "x-two: 2", "X-One: again",
                   "Cookie: c=1", "Connection: keep-alive")
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(data.replace(b"/mount/scope/caf%C3%A9%20x", b"/mount/scope"))
        scope = json.loads(read_response(reader).body)
        local_port = sock.getsockname()[1]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/mount/scope"
    assert scope["raw_path"] == "/mount/scope"
    assert scope["root_path"] == "/mount"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["headers"] == [["host", "test"], ["x-one", "1"], ["x-two", "2"], ["x-one", "again"],
                                ["cookie", "c=1"], ["connection", "keep-alive"]]
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["state"] == "dict"
    assert scope["extensions"] == ["http.response.pathsend", "http.response.trailers",
                                   "http.response.zerocopysend"]


def test_path_is_decoded_and_raw_path_kept(server):
    response, _ = exchange(server.port, request("/mount/scope/%2Fcaf%C3%A9%20x?q=%C3%A9"))
    scope = json.loads(response.body)
    assert scope["path"] == "/mount/scope//café x"
    assert scope["raw_path"] == "/mount/scope/%2Fcaf%C3%A9%20x"
    assert scope["query_string"] == "q=%C3%A9"


def test_root_path_prepended_when_the_proxy_stripped_it(server):
    response, _ = exchange(server.port, request("/scope"))
    scope = json.loads(response.body)
    assert (scope["root_path"], scope["path"], scope["raw_path"]) == ("/mount", "/mount/scope", "/mount/scope")


def test_http_10_scope(server):
    response, closed = exchange(server.port, b"GET /mount/scope HTTP/1.0\r\n\r\n")
    assert json.loads(response.body)["http_version"] == "1.0"
    assert closed


# --- request bodies ------------------------------------------------------------------

def test_body_arrives_in_pieces_with_more_body(server):
    """Each piece the client sends after the app read the previous one is a message of its own."""
    head = b"POST /mount/messages HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    with connect(server.port, 10) as sock, sock.makefile("rb") as reader:
        sock.sendall(head + b"5\r\nfirst\r\n")
        time.sleep(0.2)  # pieces sent apart (the shape below does not depend on the pause)
        sock.sendall(b"6\r\nsecond\r\n")
        time.sleep(0.2)
        sock.sendall(b"0\r\n\r\n")
        shape = json.loads(read_response(reader).body)
    assert sum(size for size, _ in shape) == 11
    assert all(more for _, more in shape[:-1]) and shape[-1][1] is False
    assert len(shape) >= 2, shape


def test_small_body_sent_at_once_is_one_message(server):
    response, _ = exchange(server.port, request("/mount/messages", method="POST", body=b"x" * 1000))
    assert json.loads(response.body) == [[1000, False]]


def test_request_without_body_gets_one_empty_message(server):
    response, _ = exchange(server.port, request("/mount/messages"))
    assert json.loads(response.body) == [[0, False]]


def test_large_upload_is_complete(client):
    body = bytes(range(256)) * 40000  # ~10 MB
    r = client.post("/mount/messages", content=body)
    shape = r.json()
    assert sum(size for size, _ in shape) == len(body)
    assert shape[-1][1] is False


def test_unread_body_pauses_the_client(server, client):
    """An app that does not read makes the transport pause: the client cannot push the whole
    body into the server; released, the app gets it all in bounded messages."""
    size = 64 * 1024 * 1024
    head = f"POST /mount/hold HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n".encode()
    block = b"z" * (1024 * 1024)
    with connect(server.port, 10) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        pushed = 0
        deadline = time.monotonic() + 3
        while pushed < size and time.monotonic() < deadline:
            try:
                pushed += sock.send(block)
            except BlockingIOError:
                time.sleep(0.01)
        assert pushed < size, "the server read the whole body although the app did not"
        assert client.get("/mount/release").status_code == 200
        sock.setblocking(True)
        sock.settimeout(20)
        remaining = size - pushed
        while remaining:
            remaining -= sock.send(block[:min(remaining, len(block))])
        result = json.loads(read_response(sock.makefile("rb")).body)
    assert result["total"] == size
    assert result["largest"] <= HIGH_WATER + READ_SIZE, result


def test_expect_100_continue_on_first_receive(server):
    with connect(server.port, 10) as sock:
        sock.sendall(b"POST /mount/messages HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        assert json.loads(read_response(sock.makefile("rb")).body) == [[4, False]]


# --- responses -----------------------------------------------------------------------

def test_streamed_response_is_chunked(server):
    response, closed = exchange(server.port, request("/mount/chunks?n=4"))
    assert response.chunked
    assert response.body == b"".join(b"piece %d\n" % i for i in range(4))
    assert not closed


def test_streamed_response_to_http_10_ends_with_the_connection(server):
    response, closed = exchange(server.port, b"GET /mount/chunks?n=2 HTTP/1.0\r\n\r\n")
    assert response.header("content-length") is None and not response.chunked
    assert response.body == b"piece 0\npiece 1\n"
    assert closed


def test_head_request_has_no_body(server):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(request("/mount/hello", method="HEAD") + request("/mount/after-head"))
        head = read_response(reader, head=True)
        after = read_response(reader)
    assert head.status == 200 and head.header("content-length") == str(len(b"200 /mount/hello"))
    assert after.body == b"200 /mount/after-head"


def test_trailers(server):
    response, closed = exchange(server.port, request("/mount/trailers", "TE: trailers"))
    assert response.body == b"body with trailers"
    assert response.trailers == [("x-checksum", "abc123")]
    assert not closed


def test_announced_trailers_hold_the_response_open_after_a_whole_sized_body(server):
    """A Content-Length body cannot carry trailers, but the response still ends only
    with the trailers message: a body message in its place is refused."""
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(request("/mount/sized-trailers", "TE: trailers") + request("/mount/last-event"))
        response = read_response(reader)
        event = json.loads(read_response(reader).body)
    assert response.header("content-length") == "5" and response.body == b"sized"
    assert not response.trailers
    assert event == {"send": "InvalidMessage: Expected 'http.response.trailers', got 'http.response.body'"}


def test_pathsend(server):
    response, closed = exchange(server.port, request("/mount/pathsend"))
    assert response.body == SAMPLE
    assert not closed


def test_zerocopysend(server):
    response, closed = exchange(server.port, request("/mount/zerocopy"))
    assert response.header("content-length") == str(len(SAMPLE))
    assert response.body == SAMPLE
    assert not closed


def test_files_go_by_sendfile_on_the_asyncio_loop():
    """uvloop has no sendfile (files go by blocks); the asyncio loop sends them with sendfile."""
    with Gunicorn(APP, env={"ASYNCWORKER_LOOP": "asyncio"}) as server:
        with connect(server.port) as sock, sock.makefile("rb") as reader:
            sock.sendall(request("/pathsend") + request("/zerocopy") + request("/chunks?n=1"))
            responses = [read_response(reader) for _ in range(3)]
    assert responses[0].chunked and responses[0].body == SAMPLE
    assert responses[1].header("content-length") == str(len(SAMPLE)) and responses[1].body == SAMPLE
    assert responses[2].body == b"piece 0\n"


def test_pipelined_requests_answered_in_order(server):
    data = b"".join(request(f"/mount/p{i}") for i in range(5))
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(data)
        bodies = [read_response(reader).body for _ in range(5)]
    assert bodies == [f"200 /mount/p{i}".encode() for i in range(5)]


def test_access_log(server):
    exchange(server.port, request("/mount/logged-path?x=1", "User-Agent: asgi-test-agent"))
    wait_until(lambda: '"GET /mount/logged-path?x=1 HTTP/1.1" 200 22' in server.log_text(), 10,
               what="the access log line")
    assert "asgi-test-agent" in server.log_text()


# --- errors --------------------------------------------------------------------------

def test_exception_before_start_gives_500_and_the_connection_goes_on(server):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(request("/mount/raise-before"))
        error = read_response(reader)
        sock.sendall(request("/mount/next"))
        after = read_response(reader)
    assert error.status == 500
    assert after.status == 200 and after.body == b"200 /mount/next"
    assert "failing before the response" in server.log_text()


def test_exception_after_start_closes_the_connection(server):
    with connect(server.port) as sock:
        sock.sendall(request("/mount/raise-after"))
        data, closed = read_until_eof(sock, 10)
    assert closed
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"first piece" in data
    assert not data.endswith(b"0\r\n\r\n")  # the chunked body never ends: the client sees it cut


def test_returning_without_response_gives_500(server):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(request("/mount/no-response") + request("/mount/next"))
        error = read_response(reader)
        after = read_response(reader)
    assert error.status == 500
    assert after.body == b"200 /mount/next"
    assert "returned without a response" in server.log_text()


def test_returning_with_incomplete_response_closes(server):
    with connect(server.port) as sock:
        sock.sendall(request("/mount/incomplete"))
        data, closed = read_until_eof(sock, 10)
    assert closed and b"partial" in data and not data.endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("case, error", [
    ("body-first", "InvalidMessage: Expected 'http.response.start' first, got 'http.response.body'"),
    ("unknown-type", "InvalidMessage: Expected 'http.response.start' first, got 'http.response.begin'"),
    ("status-str", "InvalidMessage: 'status' must be an int from 200 to 999, not '200'"),
    ("header-str", "InvalidMessage: header names and values must be bytes"),
    ("body-str", "InvalidMessage: 'body' must be bytes, not str"),
    ("start-twice", "InvalidMessage: Expected 'http.response.body', got 'http.response.start'"),
    ("not-a-dict", "InvalidMessage: ASGI messages are dicts, not str"),
])
def test_invalid_messages_raise_in_the_app(server, case, error):
    response, _ = exchange(server.port, request(f"/mount/invalid/{case}"))
    assert response.status == 200
    assert response.body.decode().startswith(error), response.body


@pytest.mark.parametrize("case", ["crlf", "nul", "hop", "name"])
def test_unsafe_response_headers_give_500(server, case):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(request(f"/mount/bad-header/{case}"))
        response = read_response(reader)
        sock.sendall(request("/mount/next"))
        after = read_response(reader)
    assert response.status == 500
    assert b"should never be sent" not in response.body
    assert all(name.lower() not in ("injected", "x-injected", "x-nul") for name, _ in response.headers)
    assert after.body == b"200 /mount/next"


def test_transfer_encoding_from_the_app_is_ignored(server):
    """The ASGI spec: the server handles Transfer-Encoding itself."""
    response, closed = exchange(server.port, request("/mount/transfer-encoding"))
    assert response.header("transfer-encoding") is None
    assert (response.header("content-length"), response.body, closed) == ("3", b"abc", False)


def test_body_longer_than_content_length_is_cut(server):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(request("/mount/too-long") + request("/mount/next"))
        response = read_response(reader)
        after = read_response(reader)
    assert response.body == b"01234"
    assert after.body == b"200 /mount/next"
    assert "Response body longer than its Content-Length (5)" in server.log_text()


def test_body_shorter_than_content_length_closes(server):
    with connect(server.port) as sock:
        sock.sendall(request("/mount/too-short"))
        data, closed = read_until_eof(sock, 10)
    assert closed and data.endswith(b"\r\n\r\nshort")


def test_messages_after_the_response_are_ignored(server):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(request("/mount/after-complete") + request("/mount/next"))
        response = read_response(reader)
        after = read_response(reader)
    assert response.body == b"complete"
    assert after.body == b"200 /mount/next"


def _last_event(client) -> dict:
    wait_until(lambda: client.get("/mount/last-event").json().get("done"), 10, what="the app's record")
    return client.get("/mount/last-event").json()


def test_client_closing_gives_disconnect_then_send_raises_oserror(server, client):
    """A FIN: receive() says http.disconnect at once; send() raises ClientDisconnected (an OSError)
    once the connection is found gone (the first write draws a reset)."""
    client.get("/mount/last-event")  # the keep-alive client connection is open before the test
    with connect(server.port) as sock:
        sock.sendall(request("/mount/wait-disconnect"))
        wait_until(lambda: client.get("/mount/last-event").json().get("waiting"), 10, what="the app waiting")
    event = _last_event(client)
    assert event["received"] == "http.disconnect"
    assert event["send"] == "ClientDisconnected"


def test_client_reset_gives_disconnect_and_send_raises_at_once(server, client):
    with connect(server.port) as sock:
        sock.sendall(request("/mount/wait-disconnect"))
        wait_until(lambda: client.get("/mount/last-event").json().get("waiting"), 10, what="the app waiting")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    event = _last_event(client)
    assert event["received"] == "http.disconnect"
    assert (event["send"], event["sends_before_error"]) == ("ClientDisconnected", 0)
    errors = [line for line in server.log_text().splitlines() if "[ERROR]" in line]
    assert not [line for line in errors if "wait-disconnect" in line], errors


def test_half_closed_client_still_gets_its_response(server):
    """EOF after a complete request: the response is still written (the client may only have
    shut its sending side)."""
    data = send_and_close_write(server.port, request("/mount/chunks?n=2"))
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n8\r\npiece 0\n\r\n8\r\npiece 1\n\r\n0\r\n\r\n")


def test_bad_chunked_body_gets_400(server):
    data = b"POST /mount/messages HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    response = send_and_close_write(server.port, data)
    assert response.startswith(b"HTTP/1.1 400 ")


def test_asgi2_double_callable():
    with Gunicorn("asgi_apps:asgi2_app") as server:
        response, _ = exchange(server.port, request("/two"))
    assert response.body == b"asgi2 /two 2.0"


def test_forced_kind_serves_an_asgi2_function():
    with Gunicorn("asgi_apps:asgi2_function", env={"ASYNCWORKER_APP_KIND": "asgi"}) as server:
        response, _ = exchange(server.port, request("/forced"))
    assert response.body == b"asgi2 /forced 2.0"
