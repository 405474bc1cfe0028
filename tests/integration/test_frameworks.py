"""Real Flask and Django apps, and PEP 3333 lint-checked apps, behind a real server."""

import httpx
import pytest

from helpers import Gunicorn, connect, read_response
from lint_apps import PLAIN_BODY, STREAM_CHUNKS, WRITE_PARTS
from sample_data import SAMPLE

FRAMEWORK_APPS = {"flask": "flask_app:app", "django": "django_app:application"}


@pytest.fixture(scope="module", params=sorted(FRAMEWORK_APPS))
def framework(request):
    """(framework name, httpx client) for a server running that framework's app."""
    with Gunicorn(FRAMEWORK_APPS[request.param]) as server, \
            httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield request.param, client


def test_form_post(framework):
    _, client = framework
    form = {"name": "Zoë & co", "n": "42", "empty": ""}
    r = client.post("/form", data=form)
    assert (r.status_code, r.json()) == (200, form)


def test_json_round_trip(framework):
    _, client = framework
    payload = {"text": "naïve ☃", "list": [1, 2.5, None, True], "nested": {"k": "v" * 5000}}
    r = client.post("/json", json=payload)
    assert (r.status_code, r.json()) == (200, {"received": payload})


def test_streamed_response_is_chunked_and_complete(framework):
    name, client = framework
    r = client.get("/stream")
    assert r.status_code == 200
    assert r.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.headers
    assert r.text == "".join(f"{name} chunk {i}\n" for i in range(5))


def test_file_download_is_byte_exact(framework):
    _, client = framework
    r = client.get("/download")
    assert r.status_code == 200
    assert r.headers.get("content-length") == str(len(SAMPLE))
    assert r.content == SAMPLE


# --- webtest.lint: PEP 3333 checked on both sides of the app ------------------

@pytest.fixture(scope="module")
def lint_server():
    with Gunicorn("lint_apps:app") as server:
        yield server
    # lint reports some violations only by printing (e.g. an iterator never closed)
    assert "AssertionError" not in server.log_text(), server.log_text()


@pytest.mark.parametrize("method, path, body, expected, chunked", [
    ("GET", "/plain", None, PLAIN_BODY, False),
    ("GET", "/stream", None, b"".join(STREAM_CHUNKS), True),
    ("GET", "/file", None, SAMPLE, None),
    ("POST", "/post", b"x" * 100_000, b"100000", False),
    ("GET", "/write", None, b"".join(WRITE_PARTS), None),
])
def test_lint_app(lint_server, method, path, body, expected, chunked):
    r = httpx.request(method, lint_server.base_url + path, content=body, timeout=10)
    assert (r.status_code, r.content) == (200, expected), r.text[:500]
    if chunked is not None:
        assert (r.headers.get("transfer-encoding") == "chunked") is chunked, r.headers


def test_lint_error_gives_500_and_keeps_connection(lint_server):
    with connect(lint_server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(b"GET /error HTTP/1.1\r\nHost: test\r\n\r\n")
        error = read_response(reader)
        assert error is not None and error.status == 500
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: test\r\n\r\n")
        after = read_response(reader)
        assert after is not None, "server closed the keep-alive connection after the 500"
        assert (after.status, after.body) == (200, PLAIN_BODY)
