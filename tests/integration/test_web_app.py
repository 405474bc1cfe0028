"""The native web layer served by a real AsyncWorker: routing, middlewares, requests,
responses, HTTP exceptions, errors, compression, files, request bodies and lifecycle hooks."""

import gzip
import json
import os
import re
import zlib
from email.utils import formatdate

import httpx
import pytest

from helpers import Gunicorn, connect, read_response, read_until_eof, wait_until

MiB = 1024 * 1024
FILE_DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture(scope="module")
def web_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("web") / "data.bin"
    path.write_bytes(FILE_DATA)
    return path


@pytest.fixture(scope="module")
def server(web_file):
    env = {"WEB_FILE": str(web_file), "ASYNCWORKER_MAX_BODY_SIZE": str(4 * MiB)}
    with Gunicorn("web_app:app", "--access-logfile", "-", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=20) as c:
        yield c


def raw(port: int, request: bytes, head: bool = False):
    with connect(port, timeout=10) as sock:
        sock.sendall(request)
        return read_response(sock, head=head)


# -- routing ---------------------------------------------------------------------------


def test_variable_segments_and_regex(client):
    assert client.get("/users/42").json()["match_info"] == {"id": "42"}
    assert client.get("/re/12/a%2Fb/c").json()["match_info"] == {"num": "12", "rest": "a/b/c"}
    assert client.get("/re/x/y").status_code == 404
    assert client.get("/users/4/2").status_code == 404


def test_handlers_run_in_their_own_task_with_fresh_context_variables(client):
    """Two requests on one keep-alive connection: the second does not see the first's
    context variable, and each handler keeps its task across awaits."""
    first = client.get("/task-context", params={"mark": "one"}).json()
    second = client.get("/task-context", params={"mark": "two"}).json()
    assert first == {"before": None, "after": "one", "same_task": True}
    assert second == {"before": None, "after": "two", "same_task": True}


def test_not_found_and_method_not_allowed(client):
    resp = client.get("/nope")
    assert (resp.status_code, resp.text) == (404, "404: Not Found")
    resp = client.post("/hello")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET,HEAD"
    assert client.request("PURGE", "/cache").text == "PURGE items"
    assert client.request("PURGE", "/hello").status_code == 405


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_each_method_helper(client, method):
    assert client.request(method, "/items").text == f"{method} items"


def test_head_route_and_head_of_get(server):
    resp = raw(server.port, b"HEAD /items HTTP/1.1\r\nHost: t\r\n\r\n", head=True)
    assert resp.status == 200 and resp.header("Content-Length") == "10"
    resp = raw(server.port, b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n", head=True)
    assert resp.status == 200 and resp.header("Content-Length") == "13"


def test_route_definitions(client):
    assert client.get("/routedef").text == "Hello, world!"


# -- requests ----------------------------------------------------------------------------


def test_request_attributes(server):
    body = b'{"k": 1}'
    request = (b"POST /echo?a=1&a=2&b=&c=%%C3%%A9 HTTP/1.1\r\nHost: example.org:81\r\n"
               b"Cookie: sid=xyz; theme=dark\r\nX-Test: one\r\nX-Test: two\r\n"
               b"Content-Type: application/json; charset=latin-1\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    seen = json.loads(raw(server.port, request).body)
    assert seen == {
        "method": "POST", "path": "/echo", "raw_path": "/echo?a=1&a=2&b=&c=%C3%A9",
        "query": [["a", "1"], ["a", "2"], ["b", ""], ["c", "é"]], "version": [1, 1], "keep_alive": True,
        "remote": "127.0.0.1", "scheme": "http", "host": "example.org:81", "content_type": "application/json",
        "charset": "latin-1", "content_length": len(body), "can_read_body": True,
        "cookies": {"sid": "xyz", "theme": "dark"}, "match_info": {}, "x_test": ["one", "two"],
        "trace": ["outer", "inner"],
    }


def test_request_without_body_and_http_10(server):
    seen = json.loads(raw(server.port, b"GET /echo HTTP/1.0\r\n\r\n").body)
    assert seen["version"] == [1, 0]
    assert seen["keep_alive"] is False
    assert seen["can_read_body"] is False
    assert seen["content_length"] is None
    assert seen["content_type"] == "application/octet-stream"


def test_keep_alive_serves_many_requests_on_one_connection(server):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        for path in ("/hello", "/nope", "/fail", "/hello"):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            resp = read_response(reader)
            assert resp.header("Connection") is None
        assert resp.body == b"Hello, world!"


# -- middlewares ----------------------------------------------------------------------------


def test_middlewares_wrap_in_order(client):
    resp = client.get("/echo")
    assert resp.json()["trace"] == ["outer", "inner"]
    assert resp.headers["X-Outer"] == "1"


def test_middleware_sees_the_routers_404(client):
    resp = client.get("/styled/missing")
    assert (resp.status_code, resp.text, resp.headers["X-Outer"]) == (404, "styled not found", "1")


# -- responses and HTTP exceptions ------------------------------------------------------------


@pytest.mark.parametrize("what,status", [("redirect", 302), ("nocontent", 204), ("forbidden", 403),
                                         ("bad", 400)])
def test_http_exceptions_raised_or_returned(server, what, status):
    resp = raw(server.port, f"GET /http/{what} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert resp.status == status
    expected = {"redirect": b"302: Found", "nocontent": b"", "forbidden": b"go away", "bad": b"400: Bad Request"}
    assert resp.body == expected[what]
    if what == "redirect":
        assert resp.header("Location") == "/hello"
    if what == "nocontent":
        assert resp.header("Content-Length") is None and resp.header("Content-Type") is None


def test_custom_status_and_reason(server):
    resp = raw(server.port, b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (resp.status, resp.reason, resp.body) == (418, "I'm a teapot", b"teapot")


def test_cookies(server):
    resp = raw(server.port, b"GET /cookies HTTP/1.1\r\nHost: t\r\n\r\n")
    cookies = [v for n, v in resp.headers if n.lower() == "set-cookie"]
    session = next(c for c in cookies if c.startswith("session="))
    assert set(session.split("; ")) == {"session=abc123", "HttpOnly", "Max-Age=60", "Path=/", "SameSite=Lax"}
    old = next(c for c in cookies if c.startswith("old="))
    assert "Max-Age=0" in old and "expires=Thu, 01 Jan 1970 00:00:00 GMT" in old


def test_last_modified(client):
    assert client.get("/last-modified").headers["Last-Modified"] == formatdate(1_700_000_000, usegmt=True)


@pytest.mark.parametrize("accept,coding", [("gzip", "gzip"), ("deflate", "deflate"),
                                           ("deflate;q=0.5, gzip;q=0.8", "gzip"), ("br", None), ("", None)])
def test_response_compression_negotiated(server, accept, coding):
    resp = raw(server.port, f"GET /compressed HTTP/1.1\r\nHost: t\r\nAccept-Encoding: {accept}\r\n\r\n".encode())
    assert resp.header("Content-Encoding") == coding
    body = resp.body
    if coding:
        assert "Accept-Encoding" in resp.header("Vary")
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS)
        assert int(resp.header("Content-Length")) == len(resp.body) < len(body)
    assert body == b"compress me " * 200


def test_forced_compression(server):
    resp = raw(server.port, b"GET /compressed?force=deflate HTTP/1.1\r\nHost: t\r\n\r\n")
    assert resp.header("Content-Encoding") == "deflate"
    assert zlib.decompress(resp.body) == b"compress me " * 200


# -- errors ---------------------------------------------------------------------------------


def test_handler_exception_gives_500_and_the_worker_goes_on(server, client):
    resp = client.get("/fail")
    assert resp.status_code == 500
    assert resp.text == "Internal Server Error\n"  # no traceback without debug
    assert client.get("/hello").text == "Hello, world!"
    log = wait_until(lambda: "boom in handler" in server.log_text() and server.log_text(), 5, what="the log")
    assert "Error handling request GET /fail" in log


def test_handler_returning_nothing_is_a_clear_500(server, client):
    assert client.get("/none").status_code == 500
    wait_until(lambda: "returned None: a handler must return a web.StreamResponse" in server.log_text(), 5,
               what="the log line")


@pytest.mark.parametrize("stream", ["", "1"])
@pytest.mark.parametrize("value", ["a\r\nX-Injected: yes", "a\nX-Injected: yes", "a\x00b", "a\rX-Injected: yes"])
def test_header_values_that_would_split_the_response_give_500(server, stream, value):
    from urllib.parse import quote

    request = (f"GET /badheader?stream={stream}&value={quote(value)} HTTP/1.1\r\nHost: t\r\n"
               f"Connection: close\r\n\r\n").encode()
    with connect(server.port) as sock:
        sock.sendall(request)
        data, closed = read_until_eof(sock, timeout=10)
    assert closed
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"X-Injected" not in data and b"never" not in data and b"\x00" not in data
    assert b"X-Bad" not in data


def test_exception_after_prepare_cuts_the_response(server, client):
    with connect(server.port) as sock:
        sock.sendall(b"GET /fail-after-prepare HTTP/1.1\r\nHost: t\r\n\r\n")
        data, closed = read_until_eof(sock, timeout=10)
    assert closed
    assert b"partial" in data and not data.endswith(b"0\r\n\r\n")
    assert client.get("/hello").status_code == 200


# -- request bodies ----------------------------------------------------------------------------


def test_body_text_json_and_forms(client):
    assert client.post("/body/read", content=b"x" * 1000).json() == {"size": 1000}
    assert client.post("/body/text", content="é".encode("latin-1"),
                       headers={"Content-Type": "text/plain; charset=latin-1"}).json() == {"text": "é"}
    assert client.post("/body/json", json={"a": [1, 2]}).json() == {"json": {"a": [1, 2]}}
    assert client.post("/body/post", data={"a": "1", "b": "two words"}).json() == {
        "form": [["a", "1"], ["b", "two words"]]}
    resp = client.post("/body/post", data={"field": "v"}, files={"up": ("name.txt", b"content", "text/plain")})
    assert resp.json() == {"form": [["field", "v"], ["up", "name.txt"]]}


def test_body_over_client_max_size_is_413(server, client):
    """read() keeps at most client_max_size (1 MiB by default): 413 past it, declared or counted."""
    with connect(server.port, timeout=10) as sock:  # declared: refused before the body is read
        sock.sendall(b"POST /body/read HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\nxx" % (MiB + 1))
        assert read_response(sock).status == 413
    with connect(server.port, timeout=10) as sock:  # chunked: refused once one byte too many came
        sock.sendall(b"POST /body/read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"%x\r\n%s\r\n" % (MiB + 1, b"y" * (MiB + 1)))
        resp = read_response(sock)
        assert resp.status == 413 and b"exceeded" in resp.body
    assert client.post("/body/read", content=b"x" * MiB).json() == {"size": MiB}


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_request_body_is_decoded(client, coding):
    data = json.dumps({"numbers": list(range(1000))}).encode()
    body = gzip.compress(data) if coding == "gzip" else zlib.compress(data)
    resp = client.post("/body/json", content=body, headers={"Content-Encoding": coding,
                                                             "Content-Type": "application/json"})
    assert resp.json() == {"json": {"numbers": list(range(1000))}}


def test_decompression_bomb_is_413(client):
    bomb = gzip.compress(b"\0" * (64 * MiB))
    assert len(bomb) < 128 * 1024
    resp = client.post("/body/read", content=bomb, headers={"Content-Encoding": "gzip"})
    assert resp.status_code == 413
    just_under = gzip.compress(b"\0" * MiB)
    assert client.post("/body/read", content=just_under, headers={"Content-Encoding": "gzip"}).json() == {
        "size": MiB}


def test_bad_or_unknown_content_encoding(client):
    assert client.post("/body/read", content=b"not gzip", headers={"Content-Encoding": "gzip"}).status_code == 400
    assert client.post("/body/read", content=b"x", headers={"Content-Encoding": "br"}).status_code == 415


def test_protocol_body_cap_reaches_the_handler_as_413(server):
    """ASYNCWORKER_MAX_BODY_SIZE: the stream raises in the handler; the server answers 413 and closes."""
    with connect(server.port, timeout=10) as sock:
        sock.sendall(b"POST /body/raw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = b"z" * 65536
        try:
            for _ in range(5 * 16):
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = read_until_eof(sock, timeout=10)
    assert data.startswith(b"HTTP/1.1 413 ")
    assert closed


# -- files --------------------------------------------------------------------------------------


def check_file_responses(port: int) -> None:
    get = lambda *h: raw(port, ("GET /file HTTP/1.1\r\nHost: t\r\n" + "".join(f"{x}\r\n" for x in h)  # noqa: E731
                                + "\r\n").encode())
    full = get()
    assert (full.status, full.body) == (200, FILE_DATA)
    assert full.header("Content-Length") == str(len(FILE_DATA))
    assert full.header("Accept-Ranges") == "bytes"
    etag, modified = full.header("ETag"), full.header("Last-Modified")
    part = get("Range: bytes=10-19")
    assert (part.status, part.body, part.header("Content-Range")) == (206, FILE_DATA[10:20], "bytes 10-19/10240")
    tail = get("Range: bytes=-100")
    assert (tail.status, tail.body) == (206, FILE_DATA[-100:])
    open_end = get("Range: bytes=10200-")
    assert (open_end.status, open_end.body) == (206, FILE_DATA[10200:])
    bad = get("Range: bytes=20000-")
    assert (bad.status, bad.header("Content-Range")) == (416, "bytes */10240")
    assert get(f"If-Modified-Since: {modified}").status == 304
    assert get(f"If-None-Match: {etag}").status == 304
    assert get("If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT").status == 200
    assert get("Range: bytes=0-1", 'If-Range: "other"').status == 200  # stale validator: whole file
    head = raw(port, b"HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n", head=True)
    assert head.status == 200 and head.header("Content-Length") == str(len(FILE_DATA))
    assert raw(port, b"GET /missing-file HTTP/1.1\r\nHost: t\r\n\r\n").status == 404


def test_file_response_without_sendfile(server):
    check_file_responses(server.port)  # uvloop: blocks read off the loop


def test_access_log(server, client):
    client.get("/hello?x=1")
    line = wait_until(lambda: re.search(r'"GET /hello\?x=1 HTTP/1.1" 200 13 ', server.log_text()), 5,
                      what="the access log line")
    assert line


# -- the app as a factory, debug, sendfile, lifecycle ------------------------------------------------


def test_async_factory_debug_tracebacks_and_sendfile(web_file):
    env = {"WEB_FILE": str(web_file), "ASYNCWORKER_DEBUG": "1", "ASYNCWORKER_LOOP": "asyncio"}
    with Gunicorn("web_app:make_app", env=env) as srv:
        resp = raw(srv.port, b"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n")
        assert resp.status == 500
        assert b"Traceback" in resp.body and b"ValueError: boom in handler" in resp.body
        check_file_responses(srv.port)  # asyncio loop: loop.sendfile


def test_application_debug_turns_tracebacks_on():
    with Gunicorn("web_app:make_debug_app") as srv:
        resp = raw(srv.port, b"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n")
        assert resp.status == 500
        assert b"Traceback" in resp.body and b"ValueError: boom in handler" in resp.body


def test_hooks_run_once_per_worker_in_order(tmp_path, web_file):
    marks = tmp_path / "marks"
    env = {"WEB_MARKS": str(marks), "WEB_FILE": str(web_file)}
    with Gunicorn("web_app:make_app_sync", env=env) as srv:
        with httpx.Client(base_url=srv.base_url) as c:
            assert c.get("/hello").text == "Hello, world!"
            assert c.get("/hello").text == "Hello, world!"
        pid = srv.worker_pids()[0]
    lines = marks.read_text().split("\n")[:-1]
    assert lines == [f"{what} {pid}" for what in ("startup", "ctx-enter", "shutdown", "ctx-exit", "cleanup")]
    assert os.path.exists(marks)
