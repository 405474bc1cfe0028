"""The ``http`` scope in C (``_chead.http_scope``) for the common request, against its
reference ``asgi.scope.http_scope_py``: the same dict, key for key and in the same order at
every level, fresh dicts for every request; any other request handed to the reference."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import assert_no_leak
from server.asgi import scope as scope_module
from server.asgi.scope import http_scope, http_scope_py
from server.protocol.host import valid_authority
from server.protocol.parser import RequestParser

pytestmark = pytest.mark.skipif(http_scope is http_scope_py, reason="the compiled helpers are not in use "
                                                                   "(ASYNCWORKER_PURE_PYTHON=1 or not built)")
PEER = (("127.0.0.1", 50000), "http")
SERVER = ("127.0.0.1", 8000)


def head_of(data: bytes):
    valid_authority("h")
    return RequestParser().feed(data)[0]


def shape(value):
    """A value with the order of every dict's keys made part of it."""
    if type(value) is dict:
        return [(key, shape(item)) for key, item in value.items()]
    return type(value), value


def agree(head, peer=PEER, server=SERVER, version="3.0", root_path="", state=None):
    state = {} if state is None else state
    compiled = http_scope(head, peer, server, version, root_path, state)
    reference = http_scope_py(head, peer, server, version, root_path, state)
    assert shape(compiled) == shape(reference)
    return compiled


HEADS = {
    "hello": b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "query": b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
    "1.0": b"GET / HTTP/1.0\r\n\r\n",
    "fields": (b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nX-Caf: caf\xe9\r\nCookie: a=1\r\n"
               b"Cookie: b=2\r\n\r\n"),
    "percent path": b"GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n",
    "absolute": b"GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
    "options": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
}


@pytest.mark.parametrize("data", list(HEADS.values()), ids=list(HEADS))
def test_the_scope_is_the_reference_scope(data):
    head = head_of(data)
    agree(head)
    agree(head, state={"db": object(), "n": 1})
    agree(head, peer=(None, "https"), server=None, version="2.1")


def test_uncommon_requests_go_to_the_reference():
    head = head_of(HEADS["query"])
    assert agree(head, root_path="/app")["root_path"] == "/app"
    assert agree(head_of(HEADS["percent path"]))["path"] == "/a b"

    class State(dict):
        pass

    agree(head, state=State(a=1))
    agree(head, peer=[("127.0.0.1", 1), "http"])
    http2 = type(head)(head.method, head.target, head.path, head.query, (2, 0), head.headers, head.raw_headers,
                       head.keep_alive, head.content_length, head.chunked, head.expect_continue, head.upgrade,
                       head.has_body)
    assert agree(http2)["http_version"] == "2"


def test_every_request_gets_its_own_dicts():
    head, state = head_of(HEADS["hello"]), {"a": 1}
    first, second = (http_scope(head, PEER, SERVER, "3.0", "", state) for _ in range(2))
    for key in ("asgi", "state", "extensions"):
        assert first[key] == second[key] and first[key] is not second[key]
    assert first["state"] is not state
    for name, value in first["extensions"].items():
        assert value == {} and value is not second["extensions"][name]
    assert first["headers"] is not second["headers"]


def test_bad_arguments_raise():
    with pytest.raises(TypeError):
        http_scope(head_of(HEADS["hello"]), PEER)
    with pytest.raises(TypeError):
        scope_module.compiled("set_scope_parts")(1, http_scope_py)


def test_the_common_and_the_handed_scopes_leak_nothing():
    head, state = head_of(HEADS["fields"]), {"a": 1}
    assert_no_leak(lambda n: [http_scope(head, PEER, SERVER, "3.0", "", state) for _ in range(n)],
                   shared=(head, state, head.method, head.path))
    assert_no_leak(lambda n: [http_scope(head, PEER, SERVER, "3.0", "/r", state) for _ in range(n)], shared=(head,))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "HEAD", "PATCH", "X"]),
       path=st.sampled_from(["/", "/a", "/a%2Fb", "/%", "*", "/caf\xe9", "//x"]),
       query=st.sampled_from(["", "?", "?a=1", "?a=%20&b"]),
       version=st.sampled_from(["1.0", "1.1"]),
       names=st.lists(st.sampled_from(["Host", "X-A", "x-a", "COOKIE", "Content-Type", "A"]), max_size=6),
       root_path=st.sampled_from(["", "", "/r"]))
def test_generated_requests_agree(method, path, query, version, names, root_path):
    fields = "".join(f"{name}: v{i}\r\n" for i, name in enumerate(names) if name != "Host")
    host = "Host: h\r\n" if version == "1.1" else ""
    data = f"{method} {path}{query} HTTP/{version}\r\n{host}{fields}\r\n".encode("latin-1")
    try:
        head = head_of(data)
    except Exception:  # (a head the parser refuses has no scope)
        return
    agree(head, root_path=root_path)


def test_connections_on_one_address_share_the_scopes_server():
    """Each accepted connection has a sockname of its own (equal to the last's): the scope's
    ``server`` made for the first serves the next, and another address gets its own."""
    from types import SimpleNamespace

    from server.asgi.protocol import ASGIConfig, ASGIConnection

    asgi = ASGIConfig(app=None, log=None)
    servers = [ASGIConnection(asgi, SimpleNamespace(sockname=(host, 8000))).scope_server()
               for host in ("127.0.0.1", "127.0.0.1", "127.0.0.2")]  # (a new tuple each)
    assert servers == [("127.0.0.1", 8000), ("127.0.0.1", 8000), ("127.0.0.2", 8000)]
    assert servers[1] is servers[0] and servers[2] is not servers[0]
