"""Load and observation: wrk runs, response checks, probe connections, accept queues, RSS.

    suite ──run_wrk(case, port)──► wrk -t1 (pinned to the load core) ──► parsed figures
          ──check(...)──────────► one request, the answer checked before any load
          ──Watch(port)─────────► during a run: fresh probe connections, the listen
                                  socket's accept queue (/proc/net/tcp), listen overflows
          ──idle_rss(...)───────► RSS of the worker before/after N idle keep-alive connections

Everything talks to 127.0.0.1 only and every wait is bounded.
"""

import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time

PROBE_TIMEOUT = 3.0  # seconds a probe waits for its whole answer
CHECK_TIMEOUT = 10.0
HOST = "127.0.0.1"

# ---------------------------------------------------------------- requests

def request_bytes(path: str, method: str = "GET", body: bytes = b"", close: bool = False,
                  headers=()) -> bytes:
    """One request; ``headers`` are extra (name, value) fields, after Host."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    names = {name.lower() for name, _ in headers}
    for name, value in headers:
        if not (close and name.lower() == "connection"):
            head += f"{name}: {value}\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
        if "content-type" not in names:
            head += "Content-Type: application/octet-stream\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


class Response:
    def __init__(self, status: int, headers: dict, body: bytes, closes: bool):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body
        self.closes = closes  # the server will close the connection after it


def read_response(sock: socket.socket, deadline: float) -> Response:
    """Read one HTTP/1.1 response (Content-Length, chunked or until EOF) before ``deadline``."""
    buf = bytearray()

    def more() -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete response in time")
        sock.settimeout(left)
        data = sock.recv(65536)
        buf.extend(data)
        return bool(data)

    while b"\r\n\r\n" not in buf:
        if not more():
            raise ConnectionError("connection closed before the response head")
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    del buf[:len(head) + 4]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    closes = headers.get("connection", "").lower() == "close"
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n and more():
            pass
        return Response(status, headers, bytes(buf[:n]), closes)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, headers, _read_chunked(buf, more), closes)
    while more():
        pass
    return Response(status, headers, bytes(buf), True)


def _read_chunked(buf: bytearray, more) -> bytes:
    body = bytearray()
    while True:
        while b"\r\n" not in buf:
            if not more():
                raise ConnectionError("connection closed in a chunked body")
        line, _, _ = bytes(buf).partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        del buf[:len(line) + 2]
        while len(buf) < size + 2:
            if not more():
                raise ConnectionError("connection closed in a chunk")
        body += buf[:size]
        del buf[:size + 2]
        if size == 0:
            return bytes(body)  # trailers, if any, are left unread


def fetch(port: int, path: str, method: str = "GET", body: bytes = b"",
          timeout: float = CHECK_TIMEOUT, headers=()) -> Response:
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request_bytes(path, method, body, close=True, headers=headers))
        return read_response(sock, deadline)


# ---------------------------------------------------------------- wrk

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unparsable wrk time {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    """requests/s, p50/p99 (ms), total requests and errors from ``wrk --latency`` output."""
    def find(pattern):
        m = re.search(pattern, out, re.MULTILINE)
        return m.groups() if m else None

    rps = find(r"^Requests/sec:\s+([\d.]+)")
    if rps is None:
        raise ValueError("no 'Requests/sec' line in wrk output:\n" + out)
    p50 = find(r"^\s+50%\s+(\S+)")
    p99 = find(r"^\s+99%\s+(\S+)")
    total = find(r"^\s+(\d+) requests in")
    sock = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    non2xx = find(r"Non-2xx or 3xx responses: (\d+)")
    return {
        "rps": float(rps[0]),
        "p50_ms": to_ms(p50[0]) if p50 else None,
        "p99_ms": to_ms(p99[0]) if p99 else None,
        "requests": int(total[0]) if total else None,
        "socket_errors": dict(zip(("connect", "read", "write", "timeout"), map(int, sock or (0,) * 4))),
        "non2xx": int(non2xx[0]) if non2xx else 0,
    }


def n_errors(run: dict) -> int:
    return sum(run["socket_errors"].values()) + run["non2xx"]


def write_script(text: str) -> str:
    """A wrk Lua script file holding ``text`` (see cases.Case.script); the caller removes it."""
    fd, path = tempfile.mkstemp(prefix="bench-request-", suffix=".lua")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def run_wrk(prefix: list[str], port: int, path: str, connections: int, duration: int,
            script: str | None = None, headers: tuple = ()) -> dict:
    """One ``wrk -t1`` run of ``duration`` whole seconds (wrk takes no fractions)."""
    cmd = prefix + ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", "--timeout", "2s"]
    for header in headers:
        cmd += ["-H", header]
    if script:
        cmd += ["-s", script]
    cmd.append(f"http://{HOST}:{port}{path}")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exit {proc.returncode}: {proc.stderr.strip()}")
    return parse_wrk(proc.stdout)


# ---------------------------------------------------------------- watching a run

def accept_queue(port: int) -> int | None:
    """Connections waiting in the accept queue of the socket listening on ``port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, queues = fields[1], fields[3], fields[4]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return int(queues.split(":")[1], 16)  # rx_queue of a listener: sk_ack_backlog
        except OSError:
            continue
    return None


def listen_backlog(port: int) -> int | None:
    """The listen backlog the kernel applies to ``port`` (``ss``'s Send-Q), if ``ss`` is there."""
    try:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = out.split()
    return int(fields[2]) if len(fields) >= 3 and fields[2].isdigit() else None


def listen_overflows() -> int | None:
    """The kernel's TcpExt ListenOverflows counter (all sockets of the host)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return None


def probe(port: int, path: str = "/") -> tuple[float | None, str]:
    """Open a fresh connection, ask once; ``(ms to the whole answer, "")`` or ``(None, why)``."""
    start = time.monotonic()
    try:
        response = fetch(port, path, timeout=PROBE_TIMEOUT)
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if response.status != 200:
        return None, f"status {response.status}"
    return (time.monotonic() - start) * 1000, ""


class Watch:
    """During one run: probe connections after ``delay`` s, and the accept queue every 0.1 s."""

    def __init__(self, port: int, delay: float, probes: int, spacing: float):
        self.port = port
        self.delay = delay
        self.probes = probes
        self.spacing = spacing
        self.probe_ms: list = []
        self.probe_errors: list[str] = []
        self.queue: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._probe_loop, daemon=True),
                         threading.Thread(target=self._queue_loop, daemon=True)]
        self._overflows = listen_overflows()

    def __enter__(self) -> "Watch":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(PROBE_TIMEOUT + 5)

    def _probe_loop(self) -> None:
        if self._stop.wait(self.delay):
            return
        for _ in range(self.probes):
            ms, why = probe(self.port)
            self.probe_ms.append(ms)
            if why:
                self.probe_errors.append(why)
            if self._stop.wait(self.spacing):
                return

    def _queue_loop(self) -> None:
        while not self._stop.wait(0.1):
            depth = accept_queue(self.port)
            if depth is not None:
                self.queue.append(depth)

    def result(self) -> dict:
        answered = [ms for ms in self.probe_ms if ms is not None]
        after = listen_overflows()
        tail = self.queue[-5:]
        return {
            "probes": len(self.probe_ms),
            "probes_answered": len(answered),
            "probe_max_ms": round(max(answered), 2) if answered else None,
            "probe_median_ms": round(statistics.median(answered), 2) if answered else None,
            "probe_errors": self.probe_errors[:5],
            "accept_queue_max": max(self.queue) if self.queue else None,
            "accept_queue_last": max(tail) if tail else None,  # the last half second of load
            "accept_queue_samples": len(self.queue),
            "listen_overflows": (after - self._overflows) if None not in (after, self._overflows) else None,
        }


# ---------------------------------------------------------------- memory

def idle_rss(port: int, worker_rss, connections: int, settle: float = 0.5) -> dict:
    """Open ``connections`` keep-alive connections, one request each, and leave them idle.

    ``worker_rss()`` gives the worker's RSS in KiB; the result holds the growth per
    connection still open when measured (a server that closes after each answer keeps none).
    """
    before = worker_rss()
    socks, kept, error = [], 0, ""
    try:
        for _ in range(connections):
            try:
                sock = socket.create_connection((HOST, port), timeout=2)
            except OSError as exc:
                error = f"stopped after {len(socks)} connections: {type(exc).__name__}: {exc}"
                break
            socks.append(sock)
            try:
                sock.sendall(request_bytes("/"))
                if not read_response(sock, time.monotonic() + 2).closes:
                    kept += 1
            except OSError as exc:  # e.g. a server with a connection limit below ``connections``
                error = f"stopped after {len(socks) - 1} connections: {type(exc).__name__}: {exc}"
                break
        time.sleep(settle)
        after = worker_rss()
    finally:
        for sock in socks:
            sock.close()
    per_conn = (after - before) / kept if kept else None
    return {"connections": connections, "kept_open": kept, "rss_before_kib": before, "rss_after_kib": after,
            "rss_per_conn_kib": round(per_conn, 2) if per_conn is not None else None, "error": error}
