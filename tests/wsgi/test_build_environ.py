"""The compiled ``build_environ`` (_chead.c) against its reference, ``environ.build_environ_py``.

The compiled one builds the common request's environ itself (a parsed head, a path
without "%", no SCRIPT_NAME, HTTP/1.0 or 1.1) and hands any other to the reference:
either way the environ must be the reference's, keys in the same order.
"""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_no_leak
from server.protocol.compiled import compiled
from server.protocol.events import RequestHead
from server.protocol.forwarded import NO_FIELDS
from server.protocol.parser import RequestParser
from server.wsgi import environ as environ_module
from server.wsgi.environ import base_environ, build_environ_py, client_environ, server_environ
from server.wsgi.filewrapper import FileWrapper

compiled_build = compiled("build_environ")
pytestmark = pytest.mark.skipif(compiled_build is None, reason="the compiled helpers are not in use "
                                                               "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
BASE = base_environ(multithread=True, multiprocess=False, file_wrapper=FileWrapper)


def client(script_name: str = "") -> dict:
    base = {**BASE, "SCRIPT_NAME": script_name}
    return client_environ(server_environ(base, ("127.0.0.1", 8000), "http", "127.0.0.1:8000"), ("127.0.0.1", 40000))


def head_of(data: bytes) -> RequestHead:
    return RequestParser().feed(data)[0]


def both(*args) -> dict:
    got, want = compiled_build(*args), build_environ_py(*args)
    assert got == want
    assert list(got) == list(want)
    return got


class Counting:
    """The reference, counting the requests handed to it."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return build_environ_py(*args)


@pytest.fixture
def reference_calls():
    counting = Counting()
    set_parts = compiled("set_environ_parts")
    set_parts(environ_module._keys, environ_module._environ_key, counting)
    yield counting
    set_parts(environ_module._keys, environ_module._environ_key, build_environ_py)


def test_the_common_request_is_built_in_c(reference_calls):
    wsgi_input = io.BytesIO()
    head = head_of(b"GET /a/b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nCookie: a=1\r\nCookie: b=2\r\n"
                   b"Content-Type: t\r\nAccept: */*\r\n\r\n")
    environ = both(client(), head, wsgi_input, None, NO_FIELDS, None)
    assert environ["wsgi.input"] is wsgi_input
    assert (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"], environ["RAW_URI"]) == (
        "GET", "/a/b", "x=1", "/a/b?x=1")
    assert (environ["SERVER_PROTOCOL"], environ["HTTP_COOKIE"], environ["CONTENT_TYPE"]) == (
        "HTTP/1.1", "a=1; b=2", "t")
    assert "CONTENT_LENGTH" not in environ
    post = head_of(b"POST / HTTP/1.0\r\nHost: h\r\nContent-Length: 12\r\n\r\n")
    environ = both(client(), post, wsgi_input, 12, NO_FIELDS, "forwarded.example")
    assert (environ["CONTENT_LENGTH"], environ["HTTP_HOST"], environ["SERVER_PROTOCOL"]) == (
        "12", "forwarded.example", "HTTP/1.0")
    assert reference_calls.calls == 0


@pytest.mark.parametrize("data, script_name, fields", [
    (b"GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", "", NO_FIELDS),
    (b"GET /app/x HTTP/1.1\r\nHost: h\r\n\r\n", "/app", NO_FIELDS),
    (b"GET /app/x HTTP/1.1\r\nHost: h\r\nSCRIPT_NAME: /app/\r\n\r\n", "", frozenset({"SCRIPT_NAME"})),
])
def test_the_others_go_to_the_reference(reference_calls, data, script_name, fields):
    environ = both(client(script_name), head_of(data), io.BytesIO(), None, fields, None)
    assert reference_calls.calls == 1
    assert environ["PATH_INFO"] in ("/a b", "/x")


def test_a_head_of_another_type_goes_to_the_reference(reference_calls):
    class OtherHead:
        method, target, path, query, version = "GET", "/", "/", "", (2, 0)
        headers = head_of(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").headers

    environ = both(client(), OtherHead(), io.BytesIO(), None, NO_FIELDS, None)
    assert environ["SERVER_PROTOCOL"] == "HTTP/2.0" and reference_calls.calls == 1


paths = st.text("ab/%2F09?", max_size=12).map(lambda p: "/" + p)
names = st.sampled_from(["Accept", "Cookie", "Content-Type", "Content-Length", "X_Y", "SCRIPT_NAME", "X-Z",
                         "User-Agent"])
values = st.text("abc ;=,", max_size=6)


@settings(max_examples=400, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "HEAD", "X"]), path=paths, version=st.sampled_from(["1.0", "1.1"]),
       fields=st.lists(st.tuples(names, values), max_size=6), script_name=st.sampled_from(["", "/a", "/a/"]),
       forwarded=st.booleans(), length=st.none() | st.integers(0, 10**12),
       host=st.none() | st.sampled_from(["h", "[::1]:8"]))
def test_any_request_gives_the_reference_environ(method, path, version, fields, script_name, forwarded, length, host):
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1:8000"]
    once = {"Content-Length": 0, "Content-Type": 1}  # (framing; a second Content-Type is a 400)
    lines += [f"{name}: {value}" for i, (name, value) in enumerate(fields)
              if once.get(name, 2) == 2 or (once[name] == 1 and [n for n, _ in fields].index(name) == i)]
    head = head_of(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    forwarder_fields = frozenset({"SCRIPT_NAME", "X_Y"}) if forwarded else NO_FIELDS
    if forwarded and "SCRIPT_NAME" not in head.headers:
        forwarder_fields = frozenset({"X_Y"})
    both(client(script_name), head, io.BytesIO(), length, forwarder_fields, host)


def test_errors_come_through():
    head = head_of(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(TypeError):
        compiled_build(client(), head, None, None, NO_FIELDS)

    class BadLength:
        def __str__(self):
            raise ValueError("no length")

    with pytest.raises(ValueError, match="no length"):
        compiled_build(client(), head, None, BadLength(), NO_FIELDS, None)


def test_it_does_not_leak():
    head = head_of(b"GET /x?y HTTP/1.1\r\nHost: h\r\nCookie: a\r\nCookie: b\r\nAccept: */*\r\n\r\n")
    other = head_of(b"GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n")
    environ, wsgi_input = client(), io.BytesIO()

    def run(n):
        for _ in range(n):
            compiled_build(environ, head, wsgi_input, 5, NO_FIELDS, "h")
            compiled_build(environ, other, wsgi_input, None, NO_FIELDS, None)

    assert_no_leak(run, shared=(environ, head, wsgi_input))
