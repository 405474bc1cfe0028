"""A request body's Content-Encoding, undone by the native ``request.read()``, through
a real AsyncWorker: every gzip member is decoded (RFC 1952 s2.2, as gzip(1) does),
bytes after the end of the stream are a 400 rather than dropped without a word, and
the decoded size stays within ``client_max_size`` however many members there are.

(WSGI and ASGI apps get the body as sent: the server decodes nothing for them.)"""

import gzip
import hashlib
import zlib

import httpx
import pytest

from helpers import Gunicorn

MiB = 1024 * 1024
CLIENT_MAX_SIZE = MiB  # web_app's Application keeps the default client_max_size


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    web_file = tmp_path_factory.mktemp("web") / "data.bin"
    web_file.write_bytes(b"x")
    env = {"WEB_FILE": str(web_file), "ASYNCWORKER_MAX_BODY_SIZE": str(4 * MiB)}
    with Gunicorn("web_app:app", env=env) as srv, httpx.Client(base_url=srv.base_url, timeout=30) as c:
        yield c


def post(client, body: bytes, coding: str = "gzip", kind: str = "read"):
    return client.post(f"/body/{kind}", content=body, headers={"Content-Encoding": coding,
                                                                "Content-Type": "text/plain; charset=utf-8"})


def test_every_gzip_member_is_decoded(client):
    parts = [b"first member, ", b"second member, ", b"third."]
    response = post(client, b"".join(gzip.compress(part) for part in parts), kind="text")
    assert response.status_code == 200
    assert response.json() == {"text": "first member, second member, third."}


def test_members_across_many_reads_are_decoded_in_order(client):
    parts = [hashlib.sha256(str(i).encode()).hexdigest().encode() * 200 for i in range(40)]
    body = b"".join(gzip.compress(part) for part in parts)
    response = post(client, body, kind="text")
    assert response.status_code == 200
    assert response.json()["text"].encode() == b"".join(parts)


def test_many_empty_members_are_decoded(client):
    body = gzip.compress(b"") * 20_000 + gzip.compress(b"end")
    assert len(body) > 256 * 1024  # more than one read of the raw body
    response = post(client, body, kind="text")
    assert response.json() == {"text": "end"}


@pytest.mark.parametrize("garbage", [b"garbage", b"\0\0\0\0", b"\x1f"])
def test_bytes_after_a_gzip_member_are_a_400(client, garbage):
    response = post(client, gzip.compress(b"payload") + garbage)
    assert response.status_code == 400


def test_bytes_after_a_deflate_stream_are_a_400(client):
    assert post(client, zlib.compress(b"payload"), "deflate", "text").json() == {"text": "payload"}
    assert post(client, zlib.compress(b"payload") + b"garbage", "deflate").status_code == 400
    assert post(client, zlib.compress(b"payload") * 2, "deflate").status_code == 400


def test_members_together_are_bounded_by_client_max_size(client):
    member = gzip.compress(b"\0" * (CLIENT_MAX_SIZE // 4))
    assert post(client, member * 4).json() == {"size": CLIENT_MAX_SIZE}
    assert post(client, member * 4 + gzip.compress(b"\0")).status_code == 413
    bomb = gzip.compress(b"\0" * (8 * MiB)) * 8  # 64 MiB decoded from a small body
    assert len(bomb) < 100 * 1024
    assert post(client, bomb).status_code == 413
