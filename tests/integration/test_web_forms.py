"""Form bodies through a real worker with the default caps (client_max_size 1 MiB, 1000 parts,
files and fields): the worst bodies within the size bound are refused with a 413, cost the
worker less than ``RSS_BOUND`` of memory and leave no temporary file open, and the worker
goes on serving.

The figures are printed (run with ``-s`` to see them).
"""

import json
import sys
from pathlib import Path

import pytest

from helpers import Gunicorn, connect, read_response, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hardening"))
from hardening_support import RssSampler, open_fds_under  # noqa: E402

MiB = 1024 * 1024
RSS_BOUND = 48 * MiB
MULTIPART = "multipart/form-data; boundary=B"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forms")
    spool = tmp / "spool"
    spool.mkdir()
    config = tmp / "forms_conf.py"  # tmp_upload_dir has no command-line flag
    config.write_text(f"tmp_upload_dir = {str(spool)!r}\n")
    with Gunicorn("web_body:forms_app", "-c", str(config)) as srv:
        srv.spool = spool
        yield srv


def post(port: int, ctype: str, body: bytes, chunked: bool = False):
    """POST ``body`` (chunked in 64 KiB frames, or with a Content-Length); the response."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    with connect(port, timeout=30) as sock:
        sock.sendall(f"POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: {ctype}\r\n{framing}\r\n\r\n".encode())
        try:
            if chunked:
                for i in range(0, len(body), 65536):
                    piece = body[i:i + 65536]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"0\r\n\r\n")
            else:
                sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):  # answered before the body was all sent
            pass
        return read_response(sock)


def field(name: str, value: str = "", head: str = "") -> bytes:
    return f'--B\r\nContent-Disposition: form-data; name="{name}"\r\n{head}\r\n{value}\r\n'.encode()


def file_part(name: str) -> bytes:
    return f'--B\r\nContent-Disposition: form-data; name="{name}"; filename="e"\r\n\r\n\r\n'.encode()


WORST = {
    # 1 MiB of "a&": 524,288 fields (+71 MB of worker memory before the cap).
    "urlencoded, 1 MiB of a&": ("application/x-www-form-urlencoded", b"a&" * (512 * 1024), False,
                                "Too many fields in the form (at most 1000)"),
    # 3,000 empty file parts: 3,000 temporary files open at once before the cap.
    "multipart, 3000 empty files": (MULTIPART, b"".join(file_part(f"f{i}") for i in range(3000)) + b"--B--",
                                    False, "Too many parts in the form (at most 1000)"),
    # 900 fields with 1.3 KB heads and no data, chunked: only part data counted before.
    "multipart, 1.2 MB of heads, chunked": (MULTIPART, b"".join(field(f"n{i}", "", f"X-Pad: {'p' * 1300}\r\n")
                                                                for i in range(900)) + b"--B--",
                                            True, "Maximum request body size 1048576 exceeded"),
    # The same with a Content-Length: refused before it is read.
    "multipart, 2 MB of 40000 empty fields": (MULTIPART, b"".join(field("a") for _ in range(40_000)) + b"--B--",
                                              False, "Maximum request body size 1048576 exceeded"),
}


@pytest.mark.parametrize("name", list(WORST))
def test_worst_form_bodies_are_a_413_with_bounded_memory_and_no_file_left(server, name):
    ctype, body, chunked, message = WORST[name]
    worker = server.worker_pids()[0]
    with RssSampler(worker) as sampler:
        resp = post(server.port, ctype, body, chunked)
    print(f"\n{name}: {len(body)} bytes, worker RSS growth {sampler.growth / MiB:.1f} MiB")
    assert resp is not None and resp.status == 413, resp
    assert message in resp.body.decode(), resp.body[:300]
    assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"
    wait_until(lambda: not open_fds_under(worker, server.spool), 5, what="the temporary files closed")
    ok = post(server.port, MULTIPART, field("a", "1") + b"--B--")
    assert ok.status == 200 and ok.body == b'{"a": "1"}', ok


def test_forms_at_the_caps_are_read(server):
    files = b"".join(file_part(f"f{i}") for i in range(999)) + field("x", "y") + b"--B--"
    resp = post(server.port, MULTIPART, files, chunked=True)
    assert resp.status == 200, resp
    assert b'"f998": {"filename": "e"' in resp.body and b'"x": "y"' in resp.body
    pairs = "&".join(f"k{i}=v" for i in range(1000)).encode()
    resp = post(server.port, "application/x-www-form-urlencoded", pairs)
    assert resp.status == 200 and b'"k999": "v"' in resp.body, resp


@pytest.mark.parametrize("ctype,body", [
    ("application/x-www-form-urlencoded; charset=punycode", b"a" * 20_000 + b"-" + b"9" * 20_000),
    ("application/x-www-form-urlencoded", b"a=%ff&b=\xff\xfe"),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"a=1"),
])
def test_urlencoded_body_not_in_a_charset_is_a_400(server, ctype, body):
    """A codec that is no charset (punycode decodes in quadratic time), or bytes not in it."""
    resp = post(server.port, ctype, body)
    assert resp.status == 400, resp
    ok = post(server.port, "application/x-www-form-urlencoded; charset=latin-1", b"a=caf%E9&b=\xe9")
    assert ok.status == 200 and json.loads(ok.body) == {"a": "café", "b": "é"}, ok
