"""Graceful shutdown under load: SIGTERM while load generators run. Every request that got
any byte of a response got the whole response; none is cut mid-body. (test_shutdown.py
covers in-flight slow requests and idle connections without load.)"""

import signal
import threading
import time

from hardening_support import MiB, hardening_server, request, scaled
from helpers import connect, read_response

CLIENTS = 6
LOAD_SECONDS = scaled(1.0, 5.0)  # of load before SIGTERM
PATHS = [(f"/sized?n={2 * MiB}", 2 * MiB), (f"/big?n={2 * MiB}", 2 * MiB), ("/slow?s=0.3", len(b"slept 0.3"))]


class CountingReader:
    """A buffered socket reader that counts the bytes it has handed out."""

    def __init__(self, sock):
        self._f = sock.makefile("rb")
        self.count = 0

    def readline(self, limit=-1):
        line = self._f.readline(limit)
        self.count += len(line)
        return line

    def read(self, n=-1):
        data = self._f.read(n)
        self.count += len(data)
        return data

    def close(self):
        self._f.close()


class LoadClient(threading.Thread):
    """Requests on keep-alive connections until the server is gone; sorts every outcome."""

    def __init__(self, port: int, index: int, stop: threading.Event, sigterm_at: list):
        super().__init__(daemon=True)
        self.port, self.index, self.stop, self.sigterm_at = port, index, stop, sigterm_at
        self.complete = self.after_sigterm = self.unanswered = 0
        self.cut: list[str] = []

    def run(self) -> None:
        n = self.index
        sock = reader = None
        while not self.stop.is_set():
            path, size = PATHS[n % len(PATHS)]
            n += 1
            try:
                if sock is None:
                    sock = connect(self.port, timeout=15)
                    reader = CountingReader(sock)
                start = reader.count
                sock.sendall(request("GET", path))
                resp = read_response(reader)
            except ConnectionRefusedError:
                return  # the server is gone
            except (OSError, ValueError) as exc:
                if reader is not None and reader.count > start:
                    self.cut.append(f"{path}: {exc!r} after {reader.count - start} bytes")
                else:
                    self.unanswered += 1
                sock, reader = _close(sock, reader)
                continue
            if resp is None:  # closed between two requests: nothing was answered
                self.unanswered += 1
                sock, reader = _close(sock, reader)
                continue
            if resp.status != 200 or len(resp.body) != size:
                self.cut.append(f"{path}: status {resp.status}, {len(resp.body)} of {size} bytes")
            self.complete += 1
            if self.sigterm_at and time.monotonic() > self.sigterm_at[0]:
                self.after_sigterm += 1
            if (resp.header("connection") or "").lower() == "close":
                sock, reader = _close(sock, reader)
        _close(sock, reader)


def _close(sock, reader):
    for thing in (reader, sock):
        if thing is not None:
            try:
                thing.close()
            except OSError:
                pass
    return None, None


def test_sigterm_under_load_cuts_no_response(tmp_path, figure):
    stop, sigterm_at = threading.Event(), []
    with hardening_server(tmp_path, "--graceful-timeout", "15", "--keep-alive", "5", threads=8) as server:
        clients = [LoadClient(server.port, i, stop, sigterm_at) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        time.sleep(LOAD_SECONDS)
        sigterm_at.append(time.monotonic())
        server.signal(signal.SIGTERM)
        exit_code = server.proc.wait(30)
        stop.set()
        for c in clients:
            c.join(20)
    complete = sum(c.complete for c in clients)
    after = sum(c.after_sigterm for c in clients)
    cut = [line for c in clients for line in c.cut]
    scenario = f"SIGTERM under load ({CLIENTS} clients)"
    figure(scenario, "responses cut mid-body", len(cut), "", "0")
    figure(scenario, "complete responses", complete, f"({after} after SIGTERM)")
    figure(scenario, "requests unanswered (connection closed first)", sum(c.unanswered for c in clients))
    assert not any(c.is_alive() for c in clients)
    assert not cut, cut
    assert complete > CLIENTS and exit_code == 0
