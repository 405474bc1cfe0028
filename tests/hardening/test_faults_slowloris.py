"""Slowloris: many connections trickle their request heads one byte per second.

A normal client keeps being served quickly (p99 bound) and every slow connection is
closed by the header timeout (``ASYNCWORKER_HEADER_TIMEOUT``, shortened here so the test
is quick; ``HARDENING_LONG=1`` uses the default 10 s)."""

import selectors
import threading
import time

from hardening_support import hardening_server, percentile, scaled, timed_get
from helpers import connect, parse_responses

SLOW_CONNECTIONS = 200
HEADER_TIMEOUT = scaled(2, 10)
P99_BOUND = 0.2  # seconds, from the issue
HEAD = b"GET /slowloris HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n"


class Trickler:
    """Sends one more byte of HEAD on every connection once a second; records when each
    connection is closed by the server (and what it answered)."""

    def __init__(self, port: int, n: int):
        self.socks = [connect(port, timeout=5) for _ in range(n)]
        self.opened = time.monotonic()
        self.closed_after: dict[int, float] = {}
        self.answers: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Trickler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self.socks:
            sock.close()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for i, sock in enumerate(self.socks):
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, i)
        sent = 0
        next_byte = time.monotonic()
        while not self._stop.is_set() and len(self.closed_after) < len(self.socks) and sent < len(HEAD) - 1:
            now = time.monotonic()
            if now >= next_byte:
                for i, sock in enumerate(self.socks):
                    if i not in self.closed_after:
                        try:
                            sock.send(HEAD[sent:sent + 1])
                        except OSError:
                            self._closed(i, sock)
                sent += 1
                next_byte += 1.0
            for key, _ in sel.select(timeout=max(0.0, min(0.05, next_byte - time.monotonic()))):
                self._read(key.data, key.fileobj, sel)
        sel.close()

    def _read(self, i, sock, sel) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.answers[i] = self.answers.get(i, b"") + data
            return
        sel.unregister(sock)
        self._closed(i, sock)

    def _closed(self, i, sock) -> None:
        self.closed_after.setdefault(i, time.monotonic() - self.opened)


def test_slowloris_does_not_starve_a_normal_client(tmp_path, figure):
    scenario = f"slowloris ({SLOW_CONNECTIONS} conns, 1 byte/s)"
    with hardening_server(tmp_path, "--env", f"ASYNCWORKER_HEADER_TIMEOUT={HEADER_TIMEOUT}",
                          "--worker-connections", "1000") as server:
        trickler = Trickler(server.port, SLOW_CONNECTIONS).start()
        try:
            time.sleep(0.3)  # the first bytes are out: every slow connection is mid-head
            latencies, failures = [], 0
            deadline = time.monotonic() + HEADER_TIMEOUT * 0.8
            while time.monotonic() < deadline and failures < 3:
                seconds = timed_get(server.port, f"/normal{len(latencies)}")
                if seconds is None:
                    failures += 1
                else:
                    latencies.append(seconds)
                time.sleep(0.01)
            still_trickling = len(trickler.closed_after)
            # Wait for the header timeout to close the slow connections (generously).
            end = time.monotonic() + HEADER_TIMEOUT + 8
            while len(trickler.closed_after) < SLOW_CONNECTIONS and time.monotonic() < end:
                time.sleep(0.1)
        finally:
            trickler.stop()
        p99 = percentile(latencies, 99) if latencies else float("inf")
        closed = sorted(trickler.closed_after.values())
        figure(scenario, "normal client p99 latency", p99 * 1000, "ms", f"< {P99_BOUND * 1000:.0f} ms")
        figure(scenario, "normal requests answered", len(latencies), f"({failures} failed)", "none fails")
        figure(scenario, "slow connections closed", len(closed), f"of {SLOW_CONNECTIONS}",
               f"all, after ~{HEADER_TIMEOUT} s")
        if closed:
            figure(scenario, "slow connections closed after", closed[-1], "s (last)",
                   f"header timeout {HEADER_TIMEOUT} s")
        hits = (tmp_path / "hits").read_text().split() if (tmp_path / "hits").exists() else []

    assert failures == 0 and len(latencies) >= 20, (failures, len(latencies))
    assert p99 < P99_BOUND, f"p99 {p99 * 1000:.0f} ms over {len(latencies)} requests"
    assert still_trickling == 0, "slow connections were closed before the header timeout"
    assert len(closed) == SLOW_CONNECTIONS
    assert HEADER_TIMEOUT * 0.9 <= closed[0] and closed[-1] < HEADER_TIMEOUT + 6, (closed[0], closed[-1])
    for data in trickler.answers.values():  # a 408 or nothing, never a response from the app
        assert [r.status for r in parse_responses(data)] == [408], data
    assert "/slowloris" not in hits
