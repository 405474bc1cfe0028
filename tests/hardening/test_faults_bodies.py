"""Large uploads against a real worker: streamed to an app that reads ``wsgi.input``
incrementally, and spooled to a temporary file before dispatch (the default). Byte count
and checksum exact, the worker's RSS growth bounded, the temporary file gone afterwards,
also when the client aborts. 128 MiB by default, 1 GiB with ``HARDENING_LONG=1``."""

import zlib

import pytest

from hardening_support import (MiB, RssSampler, hardening_server, is_asyncworker, open_fds_under, request,
                               scaled, the_worker)
from helpers import connect, read_response, wait_until
from worker_support import hits

UPLOAD = scaled(128 * MiB, 1024 * MiB)
RSS_BOUND = 32 * MiB  # a quarter of the default upload: buffering the body would cross it
BLOCK = bytes(range(256)) * 4096  # 1 MiB


def send_body(sock, size: int, crc: int = 0) -> int:
    """Send ``size`` bytes in 1 MiB blocks; return the crc32 so far."""
    sent = 0
    while sent < size:
        block = BLOCK[:size - sent]
        sock.sendall(block)
        crc = zlib.crc32(block, crc)
        sent += len(block)
    return crc


def upload(server, size: int, scenario: str, figure) -> None:
    worker = the_worker(server)
    with RssSampler(worker) as sampler, connect(server.port, timeout=60) as sock:
        sock.sendall(request("POST", "/count-input", f"Content-Length: {size}"))
        crc = send_body(sock, size)
        resp = read_response(sock)
    figure(scenario, "worker RSS growth", sampler.growth / MiB, "MiB", f"< {RSS_BOUND // MiB} MiB")
    assert resp.status == 200, resp
    assert resp.body == f"{size} {crc}".encode()
    assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"


@pytest.mark.skipif(not is_asyncworker(), reason="ASYNCWORKER_READPAYLOAD=0 is this worker's setting")
def test_streamed_upload_is_exact_with_bounded_memory(tmp_path, figure):
    with hardening_server(tmp_path, "--env", "ASYNCWORKER_READPAYLOAD=0") as server:
        upload(server, UPLOAD, f"{UPLOAD // MiB} MiB upload, streamed to the app", figure)


@pytest.fixture
def spool_server(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    config = tmp_path / "spool_conf.py"  # tmp_upload_dir has no command-line flag
    config.write_text(f"tmp_upload_dir = {str(spool)!r}\n")
    with hardening_server(tmp_path, "-c", str(config)) as server:
        server.spool = spool
        yield server


def test_spooled_upload_is_exact_with_bounded_memory_and_no_file_left(spool_server, figure):
    """The body goes to a temporary file before the app is called: seen while it arrives,
    gone (closed and unlinked) once the response is out."""
    server = spool_server
    worker = the_worker(server)
    scenario = f"{UPLOAD // MiB} MiB upload, spooled before dispatch"
    with RssSampler(worker) as sampler, connect(server.port, timeout=60) as sock:
        sock.sendall(request("POST", "/count-input", f"Content-Length: {UPLOAD}"))
        crc = send_body(sock, UPLOAD // 2)
        if is_asyncworker():
            wait_until(lambda: open_fds_under(worker, server.spool), 10, what="the spool file")
        crc = send_body(sock, UPLOAD - UPLOAD // 2, crc)
        resp = read_response(sock)
    figure(scenario, "worker RSS growth", sampler.growth / MiB, "MiB", f"< {RSS_BOUND // MiB} MiB")
    assert resp.status == 200 and resp.body == f"{UPLOAD} {crc}".encode(), resp
    wait_until(lambda: not open_fds_under(worker, server.spool), 5, what="the spool file closed")
    assert not list(server.spool.iterdir())
    assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"


@pytest.mark.skipif(not is_asyncworker(), reason="spooling before dispatch is this worker's behaviour")
def test_spooled_upload_aborted_by_the_client_leaves_no_file(spool_server, tmp_path):
    server = spool_server
    worker = the_worker(server)
    for _ in range(3):
        with connect(server.port, timeout=60) as sock:
            sock.sendall(request("POST", "/count-input", f"Content-Length: {64 * MiB}"))
            send_body(sock, 8 * MiB)
            wait_until(lambda: open_fds_under(worker, server.spool), 10, what="the spool file")
        wait_until(lambda: not open_fds_under(worker, server.spool), 10, what="the spool file closed")
    assert not list(server.spool.iterdir())
    assert "/count-input" not in hits(tmp_path), "an incomplete body must not reach the app"
    assert "Traceback" not in server.log_text()
