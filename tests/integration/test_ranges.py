"""Range and If-Range on static files (``FileResponse``), through a real AsyncWorker.

A position no file can reach is "past the end" (416 as a first position, the end
of the file as a last one), never a 500; an ``If-Range`` date matches only the
exact ``Last-Modified`` (RFC 9110 s13.1.5), an entity tag only strongly."""

import email.utils

import pytest

from helpers import Gunicorn, connect, read_response

BODY = bytes(range(256)) * 4


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    public = tmp_path_factory.mktemp("ranges")
    (public / "data.bin").write_bytes(BODY)
    with Gunicorn("web_static:app", env={"STATIC_DIR": str(public)}) as srv:
        yield srv


def get(port: int, *fields: str):
    head = "GET /static/data.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    with connect(port, timeout=10) as sock:
        sock.sendall((head + "".join(f + "\r\n" for f in fields) + "\r\n").encode("latin-1"))
        return read_response(sock)


def validators(port: int) -> tuple[str, str]:
    response = get(port)
    return response.header("ETag"), response.header("Last-Modified")


HUGE = "9" * 5000  # past any file, and past Python's limit on converting digits to int


@pytest.mark.parametrize("value", [f"bytes=0-{HUGE}", "bytes=0-99999999999999999999999999"])
def test_a_huge_last_position_is_the_end_of_the_file(server, value):
    response = get(server.port, f"Range: {value}")
    assert response.status == 206
    assert response.body == BODY
    assert response.header("Content-Range") == f"bytes 0-{len(BODY) - 1}/{len(BODY)}"


def test_a_huge_first_position_is_unsatisfiable(server):
    response = get(server.port, f"Range: bytes={HUGE}-")
    assert response.status == 416
    assert response.header("Content-Range") == f"bytes */{len(BODY)}"


def test_a_huge_suffix_is_the_whole_file(server):
    response = get(server.port, f"Range: bytes=-{HUGE}")
    assert response.status == 206
    assert response.body == BODY


def test_leading_zeros_are_a_small_position(server):
    response = get(server.port, "Range: bytes=" + "0" * 30 + "10-" + "0" * 30 + "19")
    assert response.status == 206
    assert response.body == BODY[10:20]


def test_if_range_with_the_exact_last_modified_gives_the_range(server):
    _, last_modified = validators(server.port)
    response = get(server.port, "Range: bytes=0-9", f"If-Range: {last_modified}")
    assert response.status == 206
    assert response.body == BODY[:10]


def test_if_range_with_a_later_date_gives_the_whole_file(server):
    _, last_modified = validators(server.port)
    later = email.utils.parsedate_to_datetime(last_modified).timestamp() + 3600
    response = get(server.port, "Range: bytes=0-9", f"If-Range: {email.utils.formatdate(later, usegmt=True)}")
    assert response.status == 200
    assert response.body == BODY


def test_if_range_with_an_earlier_date_gives_the_whole_file(server):
    _, last_modified = validators(server.port)
    earlier = email.utils.parsedate_to_datetime(last_modified).timestamp() - 3600
    response = get(server.port, "Range: bytes=0-9", f"If-Range: {email.utils.formatdate(earlier, usegmt=True)}")
    assert response.status == 200
    assert response.body == BODY


def test_if_range_compares_entity_tags_strongly(server):
    etag, _ = validators(server.port)
    assert get(server.port, "Range: bytes=0-9", f"If-Range: {etag}").status == 206
    weak = get(server.port, "Range: bytes=0-9", f"If-Range: W/{etag}")
    assert weak.status == 200
    assert weak.body == BODY
    assert get(server.port, "Range: bytes=0-9", 'If-Range: "other"').status == 200
