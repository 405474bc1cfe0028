"""A real worker with ``ASYNCWORKER_PURE_PYTHON=1`` (the fallback where the extension cannot
be built): the compiled helpers (``_chead``: the head parser, ``send_last``, the first-step
runner) are not loaded, and every app kind serves as it does with them: requests on a kept
connection, a chunked upload read whole, an answer that closes its connection, a request
with two different lengths refused."""

import base64
import importlib.util
import json
from pathlib import Path

import pytest

from helpers import Gunicorn, connect, read_response, read_until_eof

EXTENSION = "_chead"  # the compiled module's file name starts with it (server/protocol/)
PURE = {"ASYNCWORKER_PURE_PYTHON": "1"}
NEEDS_EXTENSION = pytest.mark.skipif(importlib.util.find_spec("server.protocol._chead") is None,
                                     reason="the extension is not built here")

# kind -> (app, a GET it answers with 200 (or None), where a chunked POST of UPLOAD goes, and
# what the app received of it, from the answer's body: the bytes, or for ASGI their count)
KINDS = {
    "wsgi": ("echo_app:app", "/kept", "/upload",
             lambda body: base64.b64decode(json.loads(body)["body"])),
    "asgi": ("asgi_apps:app", "/kept", "/messages",
             lambda body: sum(size for size, _ in json.loads(body))),
    "native": ("web_body:app", None, "/reader/read",
               lambda body: json.loads(body)["data"].encode("latin-1")),
}
UPLOAD = b"hello world"
EXPECTED = {"wsgi": UPLOAD, "asgi": len(UPLOAD), "native": UPLOAD}
CHUNKED = (b"POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
TWO_LENGTHS = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"


def extension_loaded(server: Gunicorn) -> bool:
    """Whether the worker process has the compiled module mapped."""
    (pid,) = server.worker_pids()
    return f"/{EXTENSION}." in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_a_pure_python_worker_serves_every_kind(kind):
    app, get_path, post_path, received = KINDS[kind]
    with Gunicorn(app, env=PURE) as server:
        assert not extension_loaded(server)
        with connect(server.port) as sock:
            for _ in range(2):  # (one kept connection)
                sock.sendall(CHUNKED % post_path.encode())
                answer = read_response(sock)
                assert answer.status == 200
                assert received(answer.body) == EXPECTED[kind]
            if get_path is not None:
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % get_path.encode())
                assert read_response(sock).status == 200
        with connect(server.port) as sock:
            sock.sendall(CHUNKED.replace(b"Host: t\r\n", b"Host: t\r\nConnection: close\r\n")
                         % post_path.encode())
            data, ended = read_until_eof(sock)
            assert ended and data.startswith(b"HTTP/1.1 200 ")
        with connect(server.port) as sock:
            sock.sendall(TWO_LENGTHS)
            data, ended = read_until_eof(sock)
            assert ended and data.startswith(b"HTTP/1.1 400 ")
    assert "Traceback" not in server.log_text()
    assert "is not a setting" not in server.log_text()  # (a name the worker knows)


@NEEDS_EXTENSION
def test_the_extension_is_loaded_without_the_variable():
    """The check above can fail: a worker left to its default maps the extension."""
    with Gunicorn("echo_app:app", env={"ASYNCWORKER_PURE_PYTHON": "0"}) as server:
        assert extension_loaded(server)


@NEEDS_EXTENSION
def test_pure_python_set_by_env_comes_too_late_and_says_so():
    """gunicorn applies ``--env`` after it imports the worker class, when the helpers are
    chosen: the worker keeps the extension, and the master warns that the variable did nothing."""
    with Gunicorn("echo_app:app", "--env", "ASYNCWORKER_PURE_PYTHON=1",
                  env={"ASYNCWORKER_PURE_PYTHON": "0"}) as server:
        assert extension_loaded(server)
        assert ("ASYNCWORKER_PURE_PYTHON=1 from --env or raw_env has no effect (the compiled helpers are in use)"
                in server.log_text())
