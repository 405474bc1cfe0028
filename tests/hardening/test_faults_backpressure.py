"""Write-side backpressure: a client reads a huge streamed response slowly; the app thread
is held back, so the worker's RSS stays bounded. By default 256 MiB read at 8 MiB/s for
3 s; with ``HARDENING_LONG=1`` 1 GiB read at 1 MiB/s for 60 s, then the rest at full speed
(byte count checked)."""

import socket
import time

from hardening_support import LONG, MiB, RssSampler, hardening_server, request, scaled, the_worker
from helpers import connect

RESPONSE = scaled(256 * MiB, 1024 * MiB)
RATE = scaled(8 * MiB, 1 * MiB)  # bytes per second
SLOW_SECONDS = scaled(3.0, 60.0)
RSS_BOUND = 32 * MiB  # far below the response: buffering it would cross the bound at once


class Head:
    def __init__(self, raw: bytes, extra: int):
        self.status_line = raw.split(b"\r\n", 1)[0]
        lengths = [line.split(b":", 1)[1] for line in raw.split(b"\r\n") if line.lower().startswith(b"content-length:")]
        self.length = int(lengths[0]) if lengths else None
        self.extra = extra  # body bytes received with the head


def read_head(sock) -> Head:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    raw, _, body = data.partition(b"\r\n\r\n")
    return Head(raw, len(body))


def read_at_rate(sock, rate: int, seconds: float) -> int:
    """Read for ``seconds`` at about ``rate`` bytes/s; return the bytes read."""
    got, t0 = 0, time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        allowed = int(rate * elapsed) - got
        if allowed <= 0:
            time.sleep(0.01)
            continue
        chunk = sock.recv(min(allowed, 65536))
        if not chunk:
            break
        got += len(chunk)
    return got


def test_slow_reader_of_a_huge_response_keeps_memory_bounded(tmp_path, figure):
    scenario = f"{RESPONSE // MiB} MiB response read at {RATE // MiB} MiB/s"
    with hardening_server(tmp_path) as server:
        worker = the_worker(server)
        with RssSampler(worker) as sampler, connect(server.port, timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
            sock.sendall(request("GET", f"/sized?n={RESPONSE}"))
            head = read_head(sock)
            slow = read_at_rate(sock, RATE, SLOW_SECONDS) + head.extra
            total = slow
            if LONG:  # the rest at full speed: the body is exact
                while total < RESPONSE and (chunk := sock.recv(1 << 20)):
                    total += len(chunk)
        figure(scenario, "worker RSS growth", sampler.growth / MiB, "MiB", f"< {RSS_BOUND // MiB} MiB")
        figure(scenario, "read slowly", slow / MiB, "MiB")
    assert slow > RATE * SLOW_SECONDS * 0.5, slow
    assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"
    assert head.status_line.startswith(b"HTTP/1.1 200 ") and head.length == RESPONSE
    if LONG:
        assert total == RESPONSE
