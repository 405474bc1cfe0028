"""HTTP/2 under load, on real connections: h2load's many streams, slow requests side by side
on one connection, and large uploads and downloads at once with the worker's memory bounded."""

import asyncio
import hashlib
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from h2_apps import PATTERN
from h2_client import H2Client
from h2_support import KINDS, h2_server

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

H2LOAD = shutil.which("h2load")
needs_h2load = pytest.mark.skipif(H2LOAD is None, reason="h2load (nghttp2-client) is not installed")
MIB = 1024 * 1024


def h2load(*args: str, timeout: float = 120) -> dict:
    result = subprocess.run([H2LOAD, *args], capture_output=True, text=True, timeout=timeout)
    match = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                      r"(\d+) errored, (\d+) timeout", result.stdout)
    assert match, result.stdout + result.stderr
    codes = re.search(r"status codes: (\d+) 2xx", result.stdout)
    names = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    return {**dict(zip(names, map(int, match.groups()))), "2xx": int(codes.group(1)), "out": result.stdout}


@needs_h2load
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_h2load_many_streams_without_an_error(kind):
    with h2_server(kind, threads=8) as server:
        stats = h2load("-c", "10", "-m", "100", "-n", "20000", f"{server.base_url}/")
    assert stats["succeeded"] == stats["2xx"] == 20000, stats["out"]
    assert stats["failed"] == stats["errored"] == stats["timeout"] == 0, stats["out"]


@needs_h2load
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_slow_streams_of_one_connection_run_side_by_side(kind):
    """Ten requests that each take 1 s, on one connection: about 1 s in all, not 10."""
    with h2_server(kind, threads=10) as server:
        started = time.monotonic()
        stats = h2load("-c", "1", "-m", "10", "-n", "10", f"{server.base_url}/sleep?s=1")
        elapsed = time.monotonic() - started
    assert stats["succeeded"] == 10, stats["out"]
    assert elapsed < 4.0, f"ten 1 s streams took {elapsed:.1f} s on one connection"


def vm_hwm(pid: int) -> int:
    """The process's peak resident memory, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def expected_digest(n: int) -> str:
    whole, rest = divmod(n, len(PATTERN))
    return hashlib.sha256(PATTERN * whole + PATTERN[:rest]).hexdigest()


async def upload(client, size: int) -> tuple[str, str]:
    digest = hashlib.sha256()

    async def body():
        block = bytes(range(256)) * 1024
        left = size
        while left:
            piece = block[:min(left, len(block))]
            digest.update(piece)
            left -= len(piece)
            yield piece

    status, text, _ = await client.request("POST", "/echo", body=body())
    assert status == 200
    return text.decode(), f"{size} {digest.hexdigest()}"


async def download(client, size: int) -> tuple[str, str]:
    digest, got = hashlib.sha256(), [0]

    def take(piece):
        digest.update(piece)
        got[0] += len(piece)

    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, [(":method", "GET"), (":path", f"/download?n={size}"), (":scheme", "http"),
                                   (":authority", "localhost")], end_stream=True)
    client.flush()
    status, _, _ = await client.response(sid, take)
    assert status == 200
    return f"{got[0]} {digest.hexdigest()}", f"{size} {expected_digest(size)}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_large_uploads_and_downloads_at_once_are_exact_in_bounded_memory(kind):
    """Three 64 MiB uploads and three 64 MiB downloads on one connection at once."""
    size = 64 * MIB

    async def run(port):
        client = await H2Client.connect(port)
        try:
            return await asyncio.wait_for(asyncio.gather(*[upload(client, size) for _ in range(3)],
                                                         *[download(client, size) for _ in range(3)]), 180)
        finally:
            await client.close()

    with h2_server(kind, threads=8) as server:
        pid = server.worker_pids()[0]
        before = vm_hwm(pid)
        results = asyncio.run(run(server.port))
        growth = vm_hwm(pid) - before
    for got, expected in results:
        assert got == expected
    assert growth < 128 * MIB, f"the worker grew by {growth / MIB:.0f} MiB"


@pytest.mark.parametrize("kind", ["wsgi", "native"])
def test_an_app_that_does_not_read_holds_its_client_back(kind):
    """Data is acknowledged as the app consumes it: while the app reads nothing for 2 s, the
    client can send only about the stream's window and the app's buffer ahead (not 16 MiB)."""
    size = 16 * MIB
    env = {"ASYNCWORKER_READPAYLOAD": "0", "ASYNCWORKER_MAX_BODY_SIZE": "0"}
    with h2_server(kind, env=env) as server:
        async def upload_to_a_slow_reader():
            client = await H2Client.connect(server.port)
            sent = [0]

            async def body():
                block = b"u" * 65536
                for _ in range(size // len(block)):
                    sent[0] += len(block)
                    yield block

            request = asyncio.ensure_future(client.request("POST", "/slow-read?s=2", body=body()))
            await asyncio.sleep(1.5)
            while_not_reading = sent[0]
            status, text, _ = await asyncio.wait_for(request, 60)
            await client.close()
            return while_not_reading, status, text

        while_not_reading, status, text = asyncio.run(upload_to_a_slow_reader())
    assert (status, text) == (200, str(size).encode())
    assert while_not_reading < 2 * MIB, f"{while_not_reading} bytes sent while the app read nothing"
