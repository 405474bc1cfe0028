"""Integration-test harness: real gunicorn processes, raw sockets, HTTP/1.x response parsing."""

from __future__ import annotations

import ast
import gc
import inspect
import io
import os
import re
import shutil
import signal as _signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
APPS_DIR = TESTS_DIR / "apps"
# gunicorn's request corpus, vendored from shared/corpus with its licence note (README.md there).
CORPUS_FILE = TESTS_DIR / "data" / "corpus" / "gunicorn-requests.json"
WORKER = os.environ.get("TEST_WORKER", "server.workers.AsyncWorker")
BOOT_TIMEOUT = 15.0
BOOT_LINE = "Booting worker with pid"


def load_corpus() -> list[dict]:
    """The corpus cases; a missing file is an error, never a silent skip."""
    import json

    return json.loads(CORPUS_FILE.read_text())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def implementations(reference, in_use) -> list:
    """A function's Python reference and, when it is another (compiled), the one in use: the
    implementations a parity test runs."""
    return [reference] if in_use is reference else [reference, in_use]


def run_on_loop(loop_name: str, coro_fn):
    """``coro_fn(loop)`` run to completion on a new loop of the worker's kind ``loop_name``
    (``asyncio`` or ``uvloop``), closed after."""
    from server.workers.asyncworker import new_event_loop

    loop = new_event_loop(loop_name)
    try:
        return loop.run_until_complete(coro_fn(loop))
    finally:
        loop.close()


def wait_until(condition, timeout: float, interval: float = 0.02, what: str = "condition"):
    """Poll `condition()` until it returns a truthy value; raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tcp_info(sock: socket.socket) -> bytes:
    """The socket's ``struct tcp_info`` (Linux); skips the test where it lacks the counters."""
    import pytest

    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < 144:
        pytest.skip("this kernel's TCP_INFO does not count segments")
    return info


def segments_received(sock: socket.socket) -> int:
    """``tcpi_segs_in`` of the socket's ``struct tcp_info`` (Linux 4.2 and later)."""
    return struct.unpack_from("I", tcp_info(sock), 140)[0]


def acknowledged(sock: socket.socket) -> bool:
    """All the socket sent is acknowledged (``tcpi_unacked`` is 0): it is in the peer's
    receive queue, accepted or not."""
    return struct.unpack_from("I", tcp_info(sock), 24)[0] == 0


def _tcp_rows(local_port: int, remote_port: int):
    """``(state, unread bytes)`` of each IPv4 TCP socket from ``local_port`` to ``remote_port``
    (0: any), as ``/proc/net/tcp`` has them (a listener's unread bytes: its accept queue)."""
    local, remote = f":{local_port:04X}", f":{remote_port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1].endswith(local) and (not remote_port or fields[2].endswith(remote)):
                yield int(fields[3], 16), int(fields[4].split(":")[1], 16)


TCP_ESTABLISHED = 0x01
TCP_SYN_RECV = 0x03  # (a client not yet handed to accept(): TCP_DEFER_ACCEPT)
TCP_LISTEN = 0x0A


def accept_queue(port: int) -> int:
    """The clients waiting to be accepted on the IPv4 listener of ``port``."""
    return sum(unread for state, unread in _tcp_rows(port, 0) if state == TCP_LISTEN)


def server_side(port: int, client_port: int) -> tuple[int, int] | None:
    """``(state, bytes not read yet)`` of the server's side of the connection from
    ``client_port`` to ``port`` (None once it is closed)."""
    return next(iter(_tcp_rows(port, client_port)), None)


def listener_with_congestion(name: str) -> socket.socket:
    """A socket bound to 127.0.0.1:<free port> whose connections get the TCP congestion
    control ``name`` (they inherit it from the listener); skips the test where the system
    does not offer it."""
    import pytest

    sock = socket.socket()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
    except (OSError, AttributeError) as exc:
        sock.close()
        pytest.skip(f"no TCP congestion control {name!r} here ({exc})")
    sock.bind(("127.0.0.1", 0))
    return sock


class Gunicorn:
    """A real `gunicorn` master with one worker on 127.0.0.1:<free port>; with ``congestion``,
    on a socket made here whose connections get that TCP congestion control (``fd://``)."""

    def __init__(self, app: str, *extra_args: str, threads: int = 4,
                 env: dict | None = None, chdir: str = str(APPS_DIR), congestion: str | None = None):
        self._listener = listener_with_congestion(congestion) if congestion else None
        self.port = self._listener.getsockname()[1] if self._listener else free_port()
        bind = f"fd://{self._listener.fileno()}" if self._listener else f"127.0.0.1:{self.port}"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="gunicorn-test-")
        self.log_path = Path(self._tmp.name) / "gunicorn.log"
        self.cmd = [sys.executable, "-m", "gunicorn", "-k", WORKER, "--no-control-socket",
                    "-b", bind, "--threads", str(threads),
                    "--workers", "1", "--log-level", "debug", "--chdir", chdir,
                    *extra_args, app]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
                                         pass_fds=(self._listener.fileno(),) if self._listener else ())
        if self._listener:
            self._listener.close()  # (the master has its own)
        try:
            wait_until(self._booted, BOOT_TIMEOUT, what="gunicorn worker boot")
        except BaseException as exc:
            self.stop()
            if not isinstance(exc, Exception):
                raise
            raise RuntimeError(f"gunicorn failed to start ({exc}); log:\n{self.log_text()}") from None
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _booted(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {self.proc.returncode}")
        return BOOT_LINE in self.log_text() and self._worker_serves()

    def _worker_serves(self) -> bool:
        """Connect and half-close: the listening socket alone accepts connections, but only a
        worker that has loaded the app answers or closes them."""
        try:
            with connect(self.port, timeout=1) as sock:
                sock.shutdown(socket.SHUT_WR)
                sock.recv(1)
            return True
        except OSError:  # refused, reset, or no answer yet
            return False

    def worker_pids(self) -> list[int]:
        """PIDs of the master's child processes (the workers)."""
        pids = []
        for children in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            try:
                pids += [int(p) for p in children.read_text().split()]
            except OSError:  # master or thread exited meanwhile
                pass
        return sorted(set(pids))

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM the master and wait; SIGKILL master and workers if it takes too long."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            workers = self.worker_pids()
            self.proc.send_signal(_signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in [self.proc.pid, *workers]:
                    _kill_quietly(pid)
                self.proc.wait(timeout)
        return self.proc.returncode


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- files and the page cache ----------------------------------------------------

def resident_pages(fd: int) -> int:
    """How many pages of the file open as ``fd`` the page cache holds, by ``mincore`` on a
    mapping of it: nothing is read, so no read-ahead is started (as a read would)."""
    import ctypes
    import mmap

    size = os.fstat(fd).st_size
    if not size:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    try:
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vec = ctypes.create_string_buffer(pages)
        if libc.mincore(addr, size, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return sum(byte & 1 for byte in vec.raw[:pages])
    finally:
        libc.munmap(addr, size)


def write_uncached(path, data: bytes) -> None:
    """Write ``data`` (a multiple of 1 MiB) to a new file at ``path`` with ``O_DIRECT``, past
    the page cache: none of its pages is cached until something reads it. Skips the test
    where the filesystem cannot (tmpfs, which is the page cache)."""
    import mmap

    import pytest

    block = 1 << 20
    assert len(data) % block == 0, len(data)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    except OSError as exc:
        pytest.skip(f"no O_DIRECT here ({exc}): a file cannot be written past the page cache")
    try:
        with mmap.mmap(-1, block) as aligned:  # (O_DIRECT wants page-aligned memory)
            for start in range(0, len(data), block):
                aligned[:] = data[start:start + block]
                os.write(fd, aligned)
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        if resident_pages(fd):
            pytest.skip("the filesystem keeps files in memory: a file cannot be left out of the page cache")
    finally:
        os.close(fd)


# --- raw sockets -------------------------------------------------------------

def connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def kept_connections(port: int, count: int, timeout: float = 30) -> list[socket.socket]:
    """``count`` connections, each answered a ``GET /sleep?s=0`` and kept open. A worker
    serving a WSGI app stops accepting new clients while its threads have a backlog (8
    requests waiting, server/wsgi/pool.py): requests meant to pile up in its pool go on these."""
    conns = []
    for _ in range(count):
        sock = connect(port, timeout=timeout)
        sock.sendall(b"GET /sleep?s=0 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock).status == 200
        conns.append(sock)
    return conns


def _send_quietly(sock: socket.socket, data: bytes, shut_write: bool) -> None:
    """Send `data`; the server may legitimately stop reading or close early."""
    try:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass


def read_until_eof(sock: socket.socket, timeout: float = 5) -> tuple[bytes, bool]:
    """Read until EOF or `timeout` s in total; return (data, whether EOF/reset was seen)."""
    deadline = time.monotonic() + timeout
    chunks = []
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def send_and_close_write(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send `data` on a fresh connection, half-close, return everything read until EOF/timeout."""
    with connect(port, timeout) as sock:
        _send_quietly(sock, data, shut_write=True)
        return read_until_eof(sock, timeout)[0]


def send_and_read(port: int, data: bytes, timeout: float = 5) -> tuple[bytes, bool]:
    """Send `data` on a fresh connection WITHOUT half-closing; return (received, server_closed).

    Tells whether the server closes the connection on its own."""
    with connect(port, timeout) as sock:
        _send_quietly(sock, data, shut_write=False)
        return read_until_eof(sock, timeout)


# --- response parsing --------------------------------------------------------

@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)

    @property
    def chunked(self) -> bool:
        te = self.header("transfer-encoding") or ""
        return te.replace(" ", "").lower().endswith("chunked")


class _Reader:
    """Exact reads on top of a socket (unbuffered: never over-reads) or a binary file object."""

    def __init__(self, src):
        self.f = src.makefile("rb", buffering=0) if isinstance(src, socket.socket) else src

    def readline(self) -> bytes:
        return self.f.readline(65537)  # on a raw socket file this reads byte by byte

    def read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.f.read(n - len(buf))
            if not chunk:
                raise ValueError(f"truncated body: got {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def read_all(self) -> bytes:
        buf = bytearray()
        while chunk := self.f.read(65536):
            buf += chunk
        return bytes(buf)


def _line(reader: _Reader) -> bytes:
    line = reader.readline()
    if not line.endswith(b"\n"):
        raise ValueError(f"truncated response line: {line!r}")
    return line.rstrip(b"\r\n")


def _read_fields(reader: _Reader) -> list[tuple[str, str]]:
    fields = []
    while line := _line(reader):
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"malformed header line: {line!r}")
        fields.append((name, value.strip(" \t")))
    return fields


def _read_chunked(reader: _Reader) -> tuple[bytes, list[tuple[str, str]]]:
    body = bytearray()
    while size := int(_line(reader).split(b";")[0].strip(), 16):
        body += reader.read_exact(size)
        if _line(reader) != b"":
            raise ValueError("missing CRLF after chunk data")
    return bytes(body), _read_fields(reader)


def read_response(src, head: bool = False) -> Response | None:
    """Parse exactly one HTTP/1.x response from a socket or binary reader.

    Returns None on clean EOF before any byte. `head=True`: the request was HEAD (no body)."""
    reader = src if isinstance(src, _Reader) else _Reader(src)
    first = reader.readline()
    if not first:
        return None
    if not first.endswith(b"\n"):
        raise ValueError(f"truncated status line: {first!r}")
    version, _, rest = first.rstrip(b"\r\n").decode("latin-1").partition(" ")
    status, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not status.isdigit():
        raise ValueError(f"malformed status line: {first!r}")
    resp = Response(version, int(status), reason, _read_fields(reader), b"")
    if head or resp.status < 200 or resp.status in (204, 304):
        return resp
    if resp.chunked:
        resp.body, resp.trailers = _read_chunked(reader)
    elif (length := resp.header("content-length")) is not None:
        resp.body = reader.read_exact(int(length))
    else:
        resp.body = reader.read_all()
    return resp


def parse_responses(data: bytes) -> list[Response]:
    """All responses in `data` (interim 1xx responses are entries of their own)."""
    reader = _Reader(io.BytesIO(data))
    responses = []
    while (resp := read_response(reader)) is not None:
        responses.append(resp)
    return responses


def memory_growth(run) -> int:
    """Bytes still allocated after ``run(5000)`` that were not before it (after a warm-up):
    how the tests see a compiled function that leaks."""
    run(200)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(5000)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


LEAK_LIMIT = 64 * 1024  # bytes; thousands of calls leaking one small object each pass 1 MB


def assert_no_leak(run, shared=()) -> None:
    """``run(n)`` (n calls or rounds of calls of a compiled function) leaves no memory
    behind, and the objects in ``shared`` (ones it hands out or keeps) end with the
    reference counts they had after a warm-up."""
    run(200)
    counts = [sys.getrefcount(obj) for obj in shared]
    grown = memory_growth(run)
    assert grown < LEAK_LIMIT, grown
    assert [sys.getrefcount(obj) for obj in shared] == counts


# --- nginx (tests skip where it is not installed) ----------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def nginx_command(directory: Path, site: Path) -> list[str]:
    """An nginx.conf in ``directory`` that serves ``site`` in the foreground, its files kept
    in ``directory``; the command line that runs it."""
    temp = "".join(f"{kind}_temp_path {directory}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (directory / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        + f"http {{\naccess_log off;\n{temp}include {site};\n}}\n")
    return [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")]


# -- slots: classes made per connection or per request keep no instance dict -------------

def slots_of(cls) -> set[str]:
    """Every slot of ``cls`` and its bases."""
    names = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


def attributes_set_on_self(klass) -> set[str]:
    """The names the methods of ``klass`` itself assign on ``self`` (``self.x = ...``,
    ``self.x += ...``, ``self.x: T = ...``, ``a = self.x = ...``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for element in ast.walk(target):
                if (isinstance(element, ast.Attribute) and isinstance(element.value, ast.Name)
                        and element.value.id == "self"):
                    names.add(element.attr)
    return names


def assert_slotted(cls, set_from_outside=()) -> None:
    """``cls`` has no instance dict, and every attribute its code (outside asyncio) sets
    on ``self``, or other modules set on its objects (``set_from_outside``), has a slot: an
    attribute without one fails where it is set, maybe only on a rare path."""
    own = [klass for klass in cls.__mro__ if klass is not object and not klass.__module__.startswith("asyncio")]
    assert cls.__dictoffset__ == 0, f"{cls.__name__} objects have a dict"
    assert all("__slots__" in klass.__dict__ for klass in own)
    assigned = set().union(*(attributes_set_on_self(klass) for klass in own))
    assert assigned  # the walk found the assignments (the source was read)
    assert (assigned | set(set_from_outside)) - slots_of(cls) == set()


def can_hold_what_it_sets(cls) -> bool:
    """Every attribute the code of ``cls`` sets has a slot, or its objects have a dict."""
    written = [klass for klass in cls.__mro__  # (not asyncio's, nor the class type() made, which has no source)
               if klass is not object and not klass.__module__.startswith("asyncio")
               and any(inspect.isfunction(value) for value in vars(klass).values())]
    assigned = set().union(*(attributes_set_on_self(klass) for klass in written))
    return cls.__dictoffset__ != 0 or assigned <= slots_of(cls)


class KeptLog:
    """A logger that keeps what it is told: each line formatted, and with ``exception`` the repr
    of the exception being handled (what the log prints with it)."""

    def __init__(self):
        self.lines = []

    def _keep(self, level, message, *args, **kwargs):
        self.lines.append((level, message % args if args else message))

    def debug(self, *args, **kwargs):
        self._keep("debug", *args)

    def info(self, *args, **kwargs):
        self._keep("info", *args)

    def warning(self, *args, **kwargs):
        self._keep("warning", *args)

    def error(self, *args, **kwargs):
        self._keep("error", *args)

    def exception(self, *args, **kwargs):
        self._keep("exception", *args)
        self.lines.append(("handling", repr(sys.exc_info()[1])))

    def access(self, *args, **kwargs):
        pass


def tcp_ends() -> tuple[socket.socket, socket.socket]:
    """``(server, client)``: the two ends of a loopback TCP connection, the server's non-blocking
    (as ``accept_early`` gives it)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    server.setblocking(False)
    return server, client


def undated(data: bytes) -> bytes:
    """``data`` with its Date fields' values blanked: two answers given in different seconds compare equal."""
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", data)


async def read_to_end(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """What the non-blocking ``sock`` receives on the running loop until its peer's end."""
    import asyncio

    loop = asyncio.get_running_loop()
    data = b""
    while piece := await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout):
        data += piece
    return data


class PythonCalls:
    """How many times the Python ``functions`` are called while it is on (``sys.setprofile``):
    which way a compiled helper sent a call."""

    def __init__(self, *functions):
        self.count = 0
        self._codes = {function.__code__ for function in functions}

    def __enter__(self):
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)

    def _profile(self, frame, event, arg):
        if event == "call" and frame.f_code in self._codes:
            self.count += 1


def descriptor_open(fd: int) -> bool:
    """Whether ``fd`` is an open descriptor of this process (ask before another may take its number)."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class ConnectionOwner:
    """What a worker is to its connections: told of each, and of each request done (``calls``)."""

    def __init__(self):
        self.calls = []

    def connection_opened(self, proto):
        self.calls.append("opened")

    def connection_closed(self, proto):
        self.calls.append("closed")

    def request_done(self):
        self.calls.append("done")


async def connected(proto) -> socket.socket:
    """``proto`` serving our end of a socket pair on the running loop; the client's end
    (non-blocking) is returned."""
    import asyncio

    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    await asyncio.get_running_loop().connect_accepted_socket(lambda: proto, ours)
    return theirs


async def wait_for(condition, timeout: float = 5.0) -> None:
    """Poll ``condition`` on the running loop until it holds (``TimeoutError`` past ``timeout``)."""
    import asyncio

    async def poll():
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)
