"""Request bodies of native handlers: every StreamReader method over chunked and
Content-Length uploads, 100-continue, and big uploads with the worker's memory bounded.

The big-upload tests print the worker's memory figures (run with ``-s`` to see them).
"""

import asyncio
import json
import time
import zlib
from pathlib import Path

import aiohttp
import httpx
import pytest

from helpers import Gunicorn, connect, read_response, read_until_eof

BODY = "line one\nline two\nthe third line has no newline"
CHUNKS = [BODY[:5], BODY[5:16], BODY[16:17], BODY[17:]]
MiB = 1024 * 1024
BODY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def server():
    with Gunicorn("web_body:app", env={"ASYNCWORKER_BODY_TIMEOUT": str(BODY_TIMEOUT)}) as srv:
        yield srv


def post(port: int, path: str, chunked: bool, body: str = BODY) -> dict:
    """POST ``body`` raw: chunked (CHUNKS, one frame per send) or with a Content-Length."""
    data = body.encode("latin-1")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(data)}"
    with connect(port, timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n".encode())
        if chunked:
            pieces = CHUNKS if body == BODY else [body]
            for piece in pieces:
                raw = piece.encode("latin-1")
                sock.sendall(b"%x\r\n%s\r\n" % (len(raw), raw))
                time.sleep(0.01)  # separate reads on the server, most likely
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(data)
        resp = read_response(sock)
    assert resp.status == 200, resp.body
    return json.loads(resp.body)


def regroup(chunks) -> list[str]:
    """Join readchunk() results up to each end_of_http_chunk mark."""
    groups, current = [], ""
    for data, end in chunks:
        current += data
        if end:
            groups.append(current)
            current = ""
    if current:
        groups.append(current)
    return groups


framings = pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "length"])


@framings
def test_read(server, chunked):
    assert post(server.port, "/reader/read", chunked)["data"] == BODY


@framings
@pytest.mark.parametrize("method", ["read_n?n=7", "readany", "iter_chunked?n=5", "iter_any"])
def test_pieces_join_up(server, chunked, method):
    pieces = post(server.port, f"/reader/{method}", chunked)["pieces"]
    assert "".join(pieces) == BODY
    if "n=" in method:
        assert max(map(len, pieces)) <= int(method.split("n=")[1])


@framings
def test_readexactly(server, chunked):
    result = post(server.port, "/reader/readexactly?n=10", chunked)
    assert result == {"data": BODY[:10], "rest": BODY[10:]}


@framings
def test_readexactly_on_a_short_body(server, chunked):
    n = len(BODY) + 5
    result = post(server.port, f"/reader/readexactly?n={n}", chunked)
    assert result == {"incomplete": BODY, "expected": n}


@framings
@pytest.mark.parametrize("method", ["readline", "lines"])
def test_lines(server, chunked, method):
    assert post(server.port, f"/reader/{method}", chunked)["pieces"] == BODY.splitlines(keepends=True)


@framings
def test_readuntil(server, chunked):
    pieces = post(server.port, "/reader/readuntil?sep=ne", chunked)["pieces"]
    assert "".join(pieces) == BODY
    assert all(p.endswith("ne") for p in pieces[:-1])
    assert pieces[:4] == ["line", " one", "\nline", " two\nthe third line"]


@pytest.mark.parametrize("method", ["readchunk", "iter_chunks"])
def test_readchunk_reports_http_chunk_boundaries(server, method):
    chunks = post(server.port, f"/reader/{method}", chunked=True)["chunks"]
    assert regroup(chunks) == CHUNKS
    assert chunks[-1][1] is True


@pytest.mark.parametrize("method", ["readchunk", "iter_chunks"])
def test_readchunk_without_chunked_framing_has_no_boundaries(server, method):
    chunks = post(server.port, f"/reader/{method}", chunked=False)["chunks"]
    assert "".join(d for d, _ in chunks) == BODY
    assert not any(end for _, end in chunks)


@framings
def test_read_nowait_after_wait_eof(server, chunked):
    assert post(server.port, "/reader/read_nowait", chunked) == {"data": BODY, "eof_before": False,
                                                                 "eof_after": True}


@framings
def test_unread_data(server, chunked):
    assert post(server.port, "/reader/unread?n=6", chunked)["data"] == BODY


def test_expect_100_continue_is_sent_on_first_read(server):
    with connect(server.port, timeout=10) as sock, sock.makefile("rb") as reader:
        sock.sendall(b"POST /reader/read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = read_response(reader)
        assert interim.status == 100
        sock.sendall(b"hello")
        resp = read_response(reader)
    assert json.loads(resp.body) == {"data": "hello"}


def memory_kib(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields


def test_100_mib_chunked_upload_with_iter_chunked_keeps_memory_bounded(server):
    pid = server.worker_pids()[0]
    post(server.port, "/reader/read", chunked=True)  # warm the code paths up
    before = memory_kib(pid)
    block = bytes(range(256)) * 4096  # 1 MiB
    total = 100 * MiB

    def blocks():
        for _ in range(total // len(block)):
            yield block

    expected_crc = 0
    for _ in range(total // len(block)):
        expected_crc = zlib.crc32(block, expected_crc)
    with httpx.Client(timeout=120) as client:
        result = client.post(f"{server.base_url}/upload", content=blocks()).json()
    after = memory_kib(pid)
    growth = after["VmHWM"] - before["VmHWM"]
    print(f"\n100 MiB iter_chunked upload: worker VmHWM {before['VmHWM']} -> {after['VmHWM']} KiB "
          f"(growth {growth} KiB), VmRSS {before['VmRSS']} -> {after['VmRSS']} KiB")
    assert result == {"size": total, "crc": expected_crc, "largest": 64 * 1024}
    assert growth < 32 * 1024  # KiB: the body is never buffered as a whole


def test_50_mib_multipart_upload_through_post_streams_to_disk(server, tmp_path):
    pid = server.worker_pids()[0]
    path = tmp_path / "big.bin"
    block = bytes(range(251)) * 4177  # about 1 MiB, a prime pattern
    size = 50 * MiB
    crc = 0
    with open(path, "wb") as f:
        written = 0
        while written < size:
            piece = block[: size - written]
            f.write(piece)
            crc = zlib.crc32(piece, crc)
            written += len(piece)
    before = memory_kib(pid)

    async def upload():
        form = aiohttp.FormData()
        form.add_field("title", "big one")
        with open(path, "rb") as f:
            form.add_field("file", f, filename="big.bin", content_type="application/x-test")
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{server.base_url}/form", data=form) as resp:
                    assert resp.status == 200, await resp.text()
                    return await resp.json()

    result = asyncio.run(asyncio.wait_for(upload(), 120))
    after = memory_kib(pid)
    growth = after["VmHWM"] - before["VmHWM"]
    print(f"\n50 MiB multipart upload through post(): worker VmHWM {before['VmHWM']} -> {after['VmHWM']} KiB "
          f"(growth {growth} KiB), VmRSS {before['VmRSS']} -> {after['VmRSS']} KiB")
    assert result == {"title": "big one", "file": {"filename": "big.bin", "content_type": "application/x-test",
                                                   "size": size, "crc": crc, "on_disk": size}}
    assert growth < 32 * 1024  # KiB: the file went to a temporary file, not to memory


def test_multipart_read_incrementally(server):
    boundary = "b0undary"
    body = (f"preamble\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
            f"{'x' * 2500}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\n{'y' * 10}\r\n--{boundary}--\r\nepilogue").encode()
    with httpx.Client(timeout=10) as client:
        resp = client.post(f"{server.base_url}/parts", content=body,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.json() == [{"name": "a", "filename": None, "size": 2500, "reads": 3},
                           {"name": "f", "filename": "f.txt", "size": 10, "reads": 1}]


def test_malformed_multipart_is_a_400(server):
    with httpx.Client(timeout=10) as client:
        resp = client.post(f"{server.base_url}/form", content=b"--zz\r\nno end",
                           headers={"Content-Type": "multipart/form-data; boundary=zz"})
        assert resp.status_code == 400
        assert client.post(f"{server.base_url}/reader/read", content=b"ok").json() == {"data": "ok"}


def test_stalled_upload_hits_the_body_timeout(server):
    """A client that stops sending mid-body: the handler's read fails and the connection closes."""
    with connect(server.port, timeout=10) as sock:
        sock.sendall(b"POST /reader/read HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        started = time.monotonic()
        data, closed = read_until_eof(sock, timeout=BODY_TIMEOUT + 10)
    assert closed
    assert time.monotonic() - started >= BODY_TIMEOUT * 0.9
    assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
    assert post(server.port, "/reader/read", chunked=False)["data"] == BODY
    assert "Error handling request" not in server.log_text()
