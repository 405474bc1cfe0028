"""Static files, a RouteTableDef and AppKey state, served by a real AsyncWorker.

The traversal attempts go over raw sockets, so no client normalises the path
first; a secret file sits beside the served directory and must never come back."""

import os

import httpx
import pytest

from helpers import Gunicorn, connect, read_response

SECRET = b"TOP SECRET: outside the static directory"
HELLO = b"hello, static world\n"


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("static-root")
    (root / "secret.txt").write_bytes(SECRET)
    public = root / "public"
    (public / "sub").mkdir(parents=True)
    (public / "hello.txt").write_bytes(HELLO)
    (public / "sub" / "inner.txt").write_bytes(b"inner")
    (public / "a <b>.txt").write_bytes(b"odd name")
    (public / "empty.bin").write_bytes(b"")
    os.symlink(root / "secret.txt", public / "link-out")
    os.symlink(root, public / "dirlink-out")
    os.symlink("hello.txt", public / "link-in")
    return public


@pytest.fixture(scope="module")
def server(static_dir):
    with Gunicorn("web_static:app", env={"STATIC_DIR": str(static_dir)}) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=20) as c:
        yield c


def raw_get(port: int, target: bytes, method: bytes = b"GET"):
    with connect(port, timeout=10) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_response(sock, head=method == b"HEAD")


# -- serving files ------------------------------------------------------------------------


def test_file_under_the_prefix_is_served(server):
    response = raw_get(server.port, b"/static/hello.txt")
    assert response.status == 200
    assert response.body == HELLO
    assert response.header("Content-Type").startswith("text/plain")
    assert raw_get(server.port, b"/static/sub/inner.txt").body == b"inner"
    assert raw_get(server.port, b"/static/a%20%3Cb%3E.txt").body == b"odd name"


def test_range_and_conditional_requests_go_through_file_response(client):
    whole = client.get("/static/hello.txt")
    part = client.get("/static/hello.txt", headers={"Range": "bytes=0-4"})
    assert part.status_code == 206
    assert part.content == HELLO[:5]
    assert part.headers["Content-Range"] == f"bytes 0-4/{len(HELLO)}"
    again = client.get("/static/hello.txt", headers={"If-None-Match": whole.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_head_and_other_methods(server):
    head = raw_get(server.port, b"/static/hello.txt", b"HEAD")
    assert head.status == 200
    assert head.header("Content-Length") == str(len(HELLO))
    post = raw_get(server.port, b"/static/hello.txt", b"POST")
    assert post.status == 405
    assert set(post.header("Allow").replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_missing_file_is_404(server):
    assert raw_get(server.port, b"/static/nothing.txt").status == 404
    assert raw_get(server.port, b"/static/hello.txt/more").status == 404


def test_symlink_inside_the_directory_is_served(server):
    assert raw_get(server.port, b"/static/link-in").body == HELLO


# -- directories ------------------------------------------------------------------------


@pytest.mark.parametrize("target", [b"/static/", b"/static/sub", b"/static/sub/"])
def test_directory_without_show_index_is_forbidden(server, target):
    assert raw_get(server.port, target).status == 403


def test_directory_index_lists_entries_escaped(server):
    response = raw_get(server.port, b"/indexed/")
    assert response.status == 200
    assert response.header("Content-Type").startswith("text/html")
    page = response.body.decode()
    assert "<title>Index of /</title>" in page
    assert '<a href="/indexed/hello.txt">hello.txt</a>' in page
    assert '<a href="/indexed/sub">sub/</a>' in page
    assert '<a href="/indexed/a%20%3Cb%3E.txt">a &lt;b&gt;.txt</a>' in page
    sub = raw_get(server.port, b"/indexed/sub").body.decode()
    assert "<h1>Index of /sub</h1>" in sub
    assert '<a href="/indexed/sub/inner.txt">inner.txt</a>' in sub


# -- traversal: never a file outside ------------------------------------------------------

NOT_FOUND = [
    b"/static/../secret.txt",
    b"/static/sub/../../secret.txt",
    b"/static/%2e%2e/secret.txt",
    b"/static/%2E%2E/secret.txt",
    b"/static/.%2e/secret.txt",
    b"/static/%2e%2e%2fsecret.txt",
    b"/static/..%2Fsecret.txt",
    b"/static/sub%2F..%2F..%2Fsecret.txt",
    b"/static/%252e%252e/secret.txt",  # double encoding: a name "%2e%2e", which does not exist
    b"/static/..\\secret.txt",
    b"/static/..%5csecret.txt",
    b"/static/%5c..%5csecret.txt",
    b"/static/hello.txt%00",
    b"/static/%00../secret.txt",
    b"/static/link-out",
    b"/static/dirlink-out/secret.txt",
    b"/follow/../secret.txt",
    b"/follow/%2e%2e/secret.txt",
    b"/follow/sub/..%2F..%2Fsecret.txt",
    b"/follow/..%5csecret.txt",
    b"/indexed/%2e%2e/",
    b"/table-static/%2e%2e/secret.txt",
]

FORBIDDEN = [
    b"/static//etc/passwd",
    b"/static/%2Fetc%2Fpasswd",
    b"/static/%2fetc/passwd",
    b"/follow//etc/passwd",
]


@pytest.mark.parametrize("target", NOT_FOUND)
def test_traversal_outside_the_directory_is_not_found(server, target):
    response = raw_get(server.port, target)
    assert response.status == 404, (target, response.status)
    assert SECRET not in response.body


@pytest.mark.parametrize("target", FORBIDDEN)
def test_absolute_name_is_forbidden(server, target):
    response = raw_get(server.port, target)
    assert response.status == 403, (target, response.status)
    assert b"root:" not in response.body


def test_follow_symlinks_serves_a_symlink_placed_in_the_directory(server):
    """aiohttp's meaning: with follow_symlinks, a link in the directory may point out of it;
    the name itself still cannot climb out."""
    assert raw_get(server.port, b"/follow/link-out").body == SECRET
    assert raw_get(server.port, b"/follow/hello.txt").body == HELLO


# -- RouteTableDef and AppKey ------------------------------------------------------------------


def test_route_table_routes_and_app_key_state(client):
    assert client.get("/table/Ann").text == "Hello, Ann"
    assert client.post("/table", content=b"x").text == "POST x"
    assert client.put("/table", content=b"y").text == "PUT y"
    assert client.delete("/table").status_code == 405
    assert client.request("PATCH", "/table-view").text == "view PATCH"
    assert client.get("/table-static/hello.txt").content == HELLO


def test_a_suffix_range_of_an_empty_file_is_unsatisfiable(client):
    """RFC 9110 s14.1.2: an empty file has no last bytes (it answered 206 with a
    Content-Range of "bytes 0--1/0")."""
    response = client.get("/static/empty.bin", headers={"Range": "bytes=-5"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */0"


@pytest.mark.parametrize("content_type, body", [
    ("text/plain; charset=punycode", b"x" * 100),  # not a charset (and quadratic to decode)
    ("text/plain; charset=no-such-codec", b"x"),
    ("text/plain; charset=utf-8", b"\xff\xfe bad"),
])
def test_request_text_in_a_charset_that_is_not_one_is_a_400(client, content_type, body):
    """``request.text()`` decodes only in a real charset, as form fields do (a 500 before)."""
    response = client.post("/table", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert client.post("/table", content="é".encode("latin-1"),
                       headers={"Content-Type": "text/plain; charset=latin-1"}).text == "POST é"
