"""A real Starlette app on AsyncWorker: routes, streaming, chunked uploads, lifespan, files,
errors, background tasks (its WebSocket endpoint: test_asgi_websocket.py)."""

import json

import httpx
import pytest

from helpers import Gunicorn, connect, read_response, wait_until
from sample_data import SAMPLE

APP = "asgi_starlette:app"


@pytest.fixture(scope="module")
def lifespan_log(tmp_path_factory):
    return tmp_path_factory.mktemp("lifespan") / "events"


@pytest.fixture(scope="module")
def server(lifespan_log):
    with Gunicorn(APP, "--access-logfile", "-", env={"ASGI_LIFESPAN_LOG": str(lifespan_log)}) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def test_routes(client):
    r = client.get("/")
    assert (r.status_code, r.text) == (200, "hello from starlette")
    assert r.headers["content-type"].startswith("text/plain")
    r = client.get("/items/42", params={"q": "naïve ☃"})
    assert r.json() == {"id": "42", "q": "naïve ☃", "root_path": "", "path": "/items/42"}
    assert client.get("/missing").status_code == 404


def test_served_as_asgi(server, client):
    client.get("/")
    assert "ASGI lifespan startup complete" in server.log_text()


def test_lifespan_state_reaches_requests(server, client, lifespan_log):
    r = client.get("/state")
    assert r.json() == {"started": True, "worker_pid": server.worker_pids()[0]}
    assert lifespan_log.read_text().splitlines() == ["startup"]


def test_streaming_response_arrives_line_by_line(server, client):
    """Each line reaches the client before the next one exists: the app produces line i+1
    only when the client, having read line i, asks for it."""
    key = "incremental"
    with httpx.Client(base_url=server.base_url, timeout=10) as streaming:
        with streaming.stream("GET", f"/stream/{key}", params={"n": 4}) as r:
            assert r.headers.get("transfer-encoding") == "chunked"
            lines = r.iter_lines()
            received = []
            for i in range(4):
                received.append(next(lines))  # blocks (and times out) if the line is held back
                if i < 3:
                    assert client.get(f"/stream/{key}/next").status_code == 200
            assert list(lines) == []
    assert received == [f"line {i}" for i in range(4)]


def test_upload_read_piece_by_piece(server, client):
    """The app reads each piece of a chunked upload before the client sends the next one."""
    pieces = [b"a" * 1000, b"b" * 2000, b"c" * 3000]
    head = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    with connect(server.port, 10) as sock, sock.makefile("rb") as reader:
        sock.sendall(head)
        done = 0
        for piece in pieces:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            done += len(piece)
            wait_until(lambda: client.get("/upload/progress").json()["read"] == done, 10,
                       what=f"the app to read {done} bytes")
        sock.sendall(b"0\r\n\r\n")
        result = json.loads(read_response(reader).body)
    assert result["total"] == 6000
    assert len(result["sizes"]) >= 3


def test_large_streamed_upload(client):
    def body():
        for i in range(64):
            yield bytes([i]) * 65536

    r = client.post("/upload", content=body())
    assert r.json()["total"] == 64 * 65536


def test_form_post(client):
    form = {"name": "Zoë & co", "n": "42"}
    assert client.post("/form", data=form).json() == form


def test_file_response_uses_pathsend(client):
    r = client.get("/file")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(SAMPLE))
    assert r.content == SAMPLE
    head = client.head("/file")
    assert head.headers["content-length"] == str(len(SAMPLE)) and head.content == b""


def test_app_error_gives_500_and_the_connection_goes_on(server):
    with connect(server.port) as sock, sock.makefile("rb") as reader:
        sock.sendall(b"GET /error HTTP/1.1\r\nHost: t\r\n\r\n")
        error = read_response(reader)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        after = read_response(reader)
    assert error.status == 500
    assert after.body == b"hello from starlette"
    assert "boom from starlette" in server.log_text()


def test_background_task_runs_after_the_response(client):
    assert client.get("/background").text == "accepted"
    wait_until(lambda: client.get("/background/result").json()["done"], 10, what="the background task")


def test_access_log(server, client):
    client.get("/items/7?q=log", headers={"User-Agent": "starlette-log-test"})
    wait_until(lambda: '"GET /items/7?q=log HTTP/1.1" 200' in server.log_text(), 10, what="the access line")
    assert "starlette-log-test" in server.log_text()


def test_lifespan_shutdown_runs_when_the_worker_stops(tmp_path):
    events = tmp_path / "events"
    with Gunicorn(APP, env={"ASGI_LIFESPAN_LOG": str(events)}) as server:
        assert httpx.get(server.base_url + "/state", timeout=10).json()["started"] is True
    wait_until(lambda: events.exists() and "shutdown" in events.read_text(), 10, what="lifespan shutdown")
    assert events.read_text().splitlines() == ["startup", "shutdown"]
    assert "ASGI lifespan shutdown complete" in server.log_text()
