"""CPU instructions per request of each server's own code, counted, not timed.

    python benchmarks/instructions.py                 # the hello request, every target
    python benchmarks/instructions.py --targets asyncworker-asgi,uvicorn
    python benchmarks/instructions.py --path /chunked  # or --case browser, --case echo-1MiB-c10
    python benchmarks/instructions.py --connections 1000 --cache 1048576   # hello-c1000's cost
    python benchmarks/instructions.py --http2 100     # hello over HTTP/2, 100 streams per read
    python benchmarks/instructions.py --close         # each request on a new connection

Throughput on a shared machine moves by 20% from one run to the next; the number
of instructions a request costs does not. Each target's HTTP protocol object is
driven over an in-memory transport (no sockets, no kernel): wrk's request in,
the app's response out, one request at a time on one keep-alive connection, on
uvloop. The count comes from valgrind's cachegrind, run twice with different
request counts, so start-up cancels out: (I(n2) - I(n1)) / (n2 - n1). The request is
``GET /`` unless ``--path`` names another (``/chunked``, ``/100k``) or ``--case`` one of
the suite's counted cases (``browser``: ``GET /`` with a browser's 15 header fields;
``form-4KiB`` and ``echo-1MiB-c10``: their POST, fed in 256 KiB reads as uvloop hands a
body over); ``suite.py --instructions`` runs it for its counted cases.

``--connections N`` serves N connections at once: each round reads one request on every
connection in one loop pass, as a loop does when all are readable, then waits for every
answer, so the objects of N requests in flight pile up as under load at that concurrency
(and the garbage collector's work on them is counted). Past a few hundred connections a
request costs more than its instructions: what it touches no longer fits a core's cache.
``--http2 STREAMS`` serves hello over one HTTP/2 connection (cleartext, prior knowledge)
instead: h2load's preface and windows, then reads of STREAMS requests each (HEADERS frames
with END_STREAM, all fields indexed after the first), the next read once all are answered.

``--cache BYTES`` also counts the data misses of a simulated last-level cache of that
size (cachegrind's model; 1 MiB is the L2 of a core of the machines here), a count as
steady as the instructions.

This is the user-space part of a request only: the socket reads and writes and
waking the client (about a third of a real request here, see README.md) are not
in it, so the ratios differ from the suite's req/s ratios. uvicorn writes each
response in two writes where this worker writes one, which the suite sees and
this does not.

| target | what runs |
|---|---|
| asyncworker-asgi | ASGIServerHttpProtocol, apps/asgi_hello.py, gunicorn's default forwarded_allow_ips |
| asyncworker-native | WebServerHttpProtocol, apps/native_hello.py, the same proxy policy |
| uvicorn | uvicorn's HttpToolsProtocol, apps/asgi_hello.py, proxy headers from 127.0.0.1 |
| aiohttp | aiohttp's web server (AppRunner), apps/aiohttp_hello.py |
| asyncworker-wsgi | WSGIServerHttpProtocol, apps/hello.py, one pool thread (both threads are counted) |

Needs ``valgrind``; the peers run from the suite's peers environment (see peers.py).
"""

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import time

import peers
from cases import BY_NAME

REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"  # what wrk sends, for a path
READ_SIZE = 256 * 1024  # bytes per data_received: uvloop's read buffer
TARGETS = ("asyncworker-asgi", "uvicorn", "asyncworker-native", "aiohttp", "asyncworker-wsgi")
OURS = {"asyncworker-asgi", "asyncworker-native", "asyncworker-wsgi"}
THREADED = {"asyncworker-wsgi"}  # the response is written from a callback of the thread pool
PAIRS = {"asyncworker-asgi": "uvicorn", "asyncworker-native": "aiohttp"}  # the suite's goals
SUITE_TARGETS = {"asyncworker": "asyncworker-wsgi", "asyncworker-asgi": "asyncworker-asgi",
                 "asyncworker-native": "asyncworker-native", "uvicorn": "uvicorn", "aiohttp": "aiohttp"}
COUNTED_CASES = tuple(c.name for c in BY_NAME.values() if c.counted)
RUN_TIMEOUT = 600  # seconds per valgrind run


class MemoryTransport:
    """What the protocols call on a transport; writes are kept until read."""

    def __init__(self):
        self.written = []
        self.waiter = None  # a future set by the next write
        self.closing = False

    async def next_write(self) -> None:
        """Wait for a write made from a callback of the loop (a WSGI response from the pool):
        spinning on sleep(0) instead would count the wait, which is scheduling, not work."""
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data):
        self.written.append(data)
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def writelines(self, pieces):
        self.written.extend(pieces)
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0

    def set_write_buffer_limits(self, high=None, low=None):
        pass


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


async def make_protocol(target: str, http2: bool = False):
    """A fresh protocol object of ``target``, serving its hello app (``http2``: the worker's
    connection class with cleartext HTTP/2 by prior knowledge on, as ``--http2-cleartext``)."""
    sys.path.insert(0, peers.APPS_DIR)
    loop = asyncio.get_running_loop()
    if target in OURS:
        sys.path.insert(0, peers.REPO)
        from gunicorn.config import Config

        from server.protocol.server import ServerConfig
        from server.workers.config import proxy_policy_from_gunicorn

        config = ServerConfig(log=QuietLog(), tcp_keepalive=False, keepalive=peers.KEEP_ALIVE,
                              proxy=proxy_policy_from_gunicorn(Config(), "x-forwarded"))
        if target == "asyncworker-asgi":
            import asgi_hello

            from server.asgi.protocol import ASGIConfig, ASGIConnection, ASGIServerHttpProtocol
            asgi = ASGIConfig(app=asgi_hello.app, log=QuietLog())
            cls = h2_class(ASGIServerHttpProtocol, ASGIConnection, config, asgi, http2)
            return lambda: cls(asgi, config, loop=loop)
        if target == "asyncworker-wsgi":
            return wsgi_factory(loop, config, http2)
        import native_hello

        from server.web.protocol import WebConnection, WebContext, WebServerHttpProtocol
        await native_hello.app.startup()
        context = WebContext(app=native_hello.app, log=QuietLog())
        cls = h2_class(WebServerHttpProtocol, WebConnection, config, context, http2)
        return lambda: cls(context, config, loop=loop)
    if target == "uvicorn":
        import asgi_hello
        from uvicorn.config import Config
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState

        config = Config(app=asgi_hello.app, http="httptools", lifespan="off", access_log=False,
                        proxy_headers=True, forwarded_allow_ips="127.0.0.1", timeout_keep_alive=peers.KEEP_ALIVE)
        config.load()
        state = ServerState()
        return lambda: HttpToolsProtocol(config, state, {}, loop)
    if target == "aiohttp":
        import aiohttp_hello
        from aiohttp import web

        runner = web.AppRunner(aiohttp_hello.app, access_log=None, keepalive_timeout=peers.KEEP_ALIVE)
        await runner.setup()
        return runner.server
    raise SystemExit(f"unknown target {target!r}")


def h2_class(cls, kind_cls, config, kind_config, http2: bool):
    """``cls``, or the class the worker makes of it with HTTP/2 by prior knowledge on."""
    if not http2:
        return cls
    from functools import partial

    from server.http2.config import H2Settings
    from server.http2.selection import H2Service, h2_protocol
    kind = partial(kind_cls, kind_config)
    return h2_protocol(cls, H2Service.make(kind, config, H2Settings(prior_knowledge=True)))


def wsgi_factory(loop, config, http2: bool = False):
    """WSGIServerHttpProtocol serving apps/hello.py from a pool of one thread."""
    import hello

    from server.wsgi.environ import base_environ
    from server.wsgi.filewrapper import FileWrapper
    from server.wsgi.pool import ThreadPool
    from server.wsgi.protocol import WSGIConfig, WSGIConnection, WSGIServerHttpProtocol
    wsgi = WSGIConfig(app=hello.application, pool=ThreadPool(loop, 1), log=QuietLog(),
                      environ=base_environ(multithread=False, multiprocess=False, file_wrapper=FileWrapper))
    cls = h2_class(WSGIServerHttpProtocol, WSGIConnection, config, wsgi, http2)
    return lambda: cls(wsgi, config, loop=loop)


def request_of(what: str) -> tuple[bytes, str]:
    """``(request bytes, how its answer ends)`` for a path or a counted case of cases.py."""
    if what.startswith("/"):
        method, path, headers, body = "GET", what, (), b""
    elif what in COUNTED_CASES:
        method, path, headers, body = BY_NAME[what].request()
    else:
        raise SystemExit(f"not a path nor a counted case: {what!r} (cases: {', '.join(COUNTED_CASES)})")
    if body:
        headers = [*headers, ("Content-Length", str(len(body)))]
    if headers or method != "GET":
        request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
                   + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n").encode() + body
    else:
        request = REQUEST % path.encode()
    # the hello response is one write: nothing more to look for (as before other paths were counted)
    ending = {"/": "first", "/chunked": "chunked"}.get(path, "length")
    return request, ending


_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def complete(written: list, ending: str) -> bool:
    """Whether the writes so far hold the whole response."""
    if not written:
        return False
    if ending == "first":
        return True
    if ending == "chunked":
        return written[-1].endswith(b"0\r\n\r\n")
    # No join of the body (a copy the harness would count): a server that writes a large
    # body beside its head, as uvloop's writev sends it, is charged for its own work only.
    head = written[0]
    end = head.find(b"\r\n\r\n")
    if end < 0:  # (a head written in pieces)
        head = b"".join(written)
        end = head.find(b"\r\n\r\n")
        if end < 0:
            return False
    m = _LENGTH.search(head, 0, end)
    if m is None:
        return b"".join(written).endswith(b"0\r\n\r\n")
    return sum(map(len, written)) >= end + 4 + int(m.group(1))


async def serve(target: str, requests: int, what: str = "/") -> float:
    """Answer ``requests`` requests (a path, or a counted case) on one connection; seconds per request."""
    factory = await make_protocol(target)
    protocol, transport = factory(), MemoryTransport()
    protocol.connection_made(transport)
    wait = transport.next_write if target in THREADED else _next_loop_pass
    request, ending = request_of(what)
    started = time.perf_counter()
    for _ in range(requests):
        for start in range(0, len(request), READ_SIZE):  # (a large body comes in socket reads)
            protocol.data_received(request[start:start + READ_SIZE])
        while not complete(transport.written, ending):
            await wait()
        response = transport.written[0]  # (the head starts the first write)
        transport.written.clear()
        if not response.startswith(b"HTTP/1.1 200 "):
            raise SystemExit(f"{target}: unexpected response {response[:80]!r}")
    return (time.perf_counter() - started) / requests


async def serve_closing(target: str, requests: int, what: str = "/") -> float:
    """Each request on a new connection that the answer closes (``wrk -H 'Connection:
    close'``): the connection made with its request (this worker's protocols take it as
    the bytes read at accept, as listeners.py gives them; the peers' as their first read),
    answered, then lost. Fed from a loop callback, as a loop delivers them."""
    factory = await make_protocol(target)
    early_read = 0  # bytes a protocol takes at accept
    if target in OURS:
        from server.workers.listeners import EARLY_READ as early_read
    request, ending = request_of(what)
    request = request.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
    started = time.perf_counter()
    for _ in range(requests):
        protocol, transport = factory(), MemoryTransport()
        wait = transport.next_write if target in THREADED else _next_loop_pass
        await _from_a_callback(_open_with, protocol, transport, request, early_read)
        while not complete(transport.written, ending):
            await wait()
        if not transport.written[0].startswith(b"HTTP/1.1 200 "):
            raise SystemExit(f"{target}: unexpected response {transport.written[0][:80]!r}")
        protocol.connection_lost(None)
    return (time.perf_counter() - started) / requests


def _open_with(protocol, transport, request: bytes, early_read: int) -> None:
    """Make the connection, ``early_read`` bytes of its request taken at accept, the rest read."""
    if early_read:
        protocol.early_data = request[:early_read]
    protocol.connection_made(transport)
    if len(request) > early_read:
        protocol.data_received(request[early_read:])


def _read_on_each(pairs, request) -> None:
    for protocol, _transport in pairs:
        for start in range(0, len(request), READ_SIZE):
            protocol.data_received(request[start:start + READ_SIZE])


async def _from_a_callback(fn, *args) -> None:
    """Run ``fn(*args)`` in a loop callback, as a loop delivers reads (not inside a task)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def callback():
        try:
            fn(*args)
        finally:
            done.set_result(None)

    loop.call_soon(callback)
    await done


async def serve_many(target: str, requests: int, what: str, connections: int) -> float:
    """Like ``serve``, on ``connections`` connections at once: each round reads one request on
    every connection in one loop pass (as a loop does when all are readable), then waits for
    every answer. Objects of requests in flight pile up as they do under load at that
    concurrency, and so does the garbage collector's work on them."""
    factory = await make_protocol(target)
    if target in OURS:
        collector_as_in_the_worker()
    pairs = [(factory(), MemoryTransport()) for _ in range(connections)]
    for protocol, transport in pairs:
        protocol.connection_made(transport)
    request, ending = request_of(what)
    started = time.perf_counter()
    for _ in range(max(1, requests // connections)):
        await _from_a_callback(_read_on_each, pairs, request)
        for protocol, transport in pairs:
            while not complete(transport.written, ending):
                await (transport.next_write() if target in THREADED else _next_loop_pass())
            if not transport.written[0].startswith(b"HTTP/1.1 200 "):
                raise SystemExit(f"{target}: unexpected response {transport.written[0][:80]!r}")
            transport.written.clear()
    return (time.perf_counter() - started) / requests


H2_FIELDS = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"127.0.0.1:8000"),
             (b"accept-encoding", b"gzip, deflate"), (b"user-agent", b"h2load nghttp2/1.52.0")]  # what h2load sends
H2_WINDOW = 2**30 - 1  # h2load's windows (-w 30 -W 30): the responses never wait for one


def h2_frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream_id.to_bytes(4, "big") + payload


class H2Client:
    """The bytes h2load sends: its preface and settings, then requests, each a HEADERS frame
    with END_STREAM; after the first, every header block is the same (all fields indexed)."""

    def __init__(self):
        from hpack import Encoder
        encoder = Encoder()
        self.blocks = [encoder.encode(H2_FIELDS), encoder.encode(H2_FIELDS)]
        self.next_id = 1

    def opening(self) -> bytes:
        settings = (0x4).to_bytes(2, "big") + H2_WINDOW.to_bytes(4, "big")  # INITIAL_WINDOW_SIZE
        return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(0x4, 0, 0, settings)
                + h2_frame(0x8, 0, 0, (H2_WINDOW - 65535).to_bytes(4, "big")))

    def requests(self, count: int) -> bytes:
        frames = []
        for _ in range(count):
            block = self.blocks[min(1, self.next_id // 2)]
            frames.append(h2_frame(0x1, 0x5, self.next_id, block))  # END_STREAM | END_HEADERS
            self.next_id += 2
        return b"".join(frames)


async def serve_h2(target: str, requests: int, streams: int) -> float:
    """Answer ``requests`` requests over one HTTP/2 connection, ``streams`` of them sent in each
    read (h2load -m); the next read comes once they are all answered."""
    factory = await make_protocol(target, http2=True)
    if target in OURS:
        collector_as_in_the_worker()
    protocol, transport = factory(), MemoryTransport()
    protocol.connection_made(transport)
    client = H2Client()
    protocol.data_received(client.opening())
    connection = protocol.h2_connection
    started = time.perf_counter()
    for _ in range(max(1, requests // streams)):
        protocol.data_received(client.requests(streams))
        while connection.streams or connection._flush_due is not None:
            await (transport.next_write() if target in THREADED else _next_loop_pass())
        if b"Hello" not in b"".join(transport.written):
            raise SystemExit(f"{target}: no hello response over HTTP/2 in {transport.written[:3]!r}")
        transport.written.clear()
    if connection.transport is None or connection._closed:
        raise SystemExit(f"{target}: the HTTP/2 connection closed")
    return (time.perf_counter() - started) / requests


def collector_as_in_the_worker() -> None:
    """Freeze and raise the first threshold as the worker does once its app is loaded
    (``ASYNCWORKER_GC_FREEZE``, ``ASYNCWORKER_GC_THRESHOLD``; from the environment)."""
    from server.workers.heap import freeze_startup_objects, raise_young_threshold
    from server.workers.settings import WorkerSettings
    settings = WorkerSettings.from_env()
    freeze_startup_objects(settings.gc_freeze)
    raise_young_threshold(settings.gc_threshold)


def _next_loop_pass():
    return asyncio.sleep(0)


def child(target: str, requests: int, what: str = "/", connections: int = 1, streams: int = 0,
          close: int = 0) -> None:
    import uvloop

    if close:
        uvloop.run(serve_closing(target, requests, what))
    elif streams:
        uvloop.run(serve_h2(target, requests, streams))
    elif connections > 1:
        uvloop.run(serve_many(target, requests, what, connections))
    else:
        uvloop.run(serve(target, requests, what))


def count(python: str, target: str, requests: int, what: str = "/", connections: int = 1,
          cache: int = 0, streams: int = 0, close: bool = False) -> tuple[int, int]:
    """Instructions, and data misses of a last-level cache of ``cache`` bytes (0: not
    simulated, 0 misses), of one child run under cachegrind."""
    simulate = ["--cache-sim=yes", f"--LL={cache},16,64"] if cache else ["--cache-sim=no"]
    cmd = ["valgrind", "--tool=cachegrind", *simulate, "--cachegrind-out-file=/dev/null",
           python, os.path.abspath(__file__), "--child", target, str(requests), what, str(connections), str(streams), str(int(close))]
    env = {**peers.clean_env(), "PYTHONHASHSEED": "0"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    m = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or m is None:
        raise RuntimeError(f"{target}: valgrind run failed:\n{done.stderr[-2000:]}")
    misses = re.search(r"LLd misses:\s+([\d,]+)", done.stderr) if cache else None
    return int(m.group(1).replace(",", "")), int(misses.group(1).replace(",", "")) if misses else 0


def per_request(python: str, target: str, low: int, high: int, what: str = "/", connections: int = 1,
                cache: int = 0, streams: int = 0, close: bool = False) -> float | tuple[float, float]:
    """Instructions per request of ``what`` (a path, or a counted case of cases.py) on
    ``connections`` connections at once (``close``: each on a new connection); with
    ``cache``, (instructions, misses) per request."""
    (i_low, m_low), (i_high, m_high) = (count(python, target, n, what, connections, cache, streams, close)
                                          for n in (low, high))
    instructions = (i_high - i_low) / (high - low)
    return (instructions, (m_high - m_low) / (high - low)) if cache else instructions


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=None, help="comma-separated (default: all; with --http2, this worker's)")
    p.add_argument("--requests", default="2000,6000", help="the two request counts, low,high")
    p.add_argument("--peers-python", default=None)
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--path", default="/", help="the path requested: / (hello), /chunked (16 x 4 KiB), "
                   "/100k (100 KiB with Content-Length)")
    p.add_argument("--case", choices=COUNTED_CASES,
                   help="send the request of this suite case instead (e.g. browser: GET / with 15 header fields)")
    p.add_argument("--connections", type=int, default=1,
                   help="serve on this many connections at once, one request each per loop pass "
                   "(e.g. 1000, the suite's hello-c1000); the request counts should be multiples of it")
    p.add_argument("--cache", type=int, default=0, metavar="BYTES",
                   help="also count data misses of a simulated last-level cache of this size "
                   "(e.g. 1048576, the L2 of a core here): what many connections cost beyond instructions")
    p.add_argument("--http2", type=int, default=0, metavar="STREAMS",
                   help="hello over one HTTP/2 connection (cleartext, prior knowledge), STREAMS requests in each "
                   "read as h2load -m sends them (e.g. 100); this worker's targets only")
    p.add_argument("--close", action="store_true",
                   help="each request on a new connection that its answer closes (Connection: close)")
    p.add_argument("--child", nargs="+", metavar="ARG",
                   help=argparse.SUPPRESS)  # TARGET N [PATH [CONNECTIONS [STREAMS [CLOSE]]]]
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]), *args.child[2:3], *map(int, args.child[3:6]))
        return 0
    what = args.case or args.path
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    default = [t for t in TARGETS if t in OURS] if args.http2 else TARGETS
    targets = [t for t in args.targets.split(",") if t] if args.targets else default
    unknown = set(targets) - set(TARGETS)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))} (known: {', '.join(TARGETS)})")
    if args.http2 and set(targets) - OURS:
        p.error("--http2 counts this worker's targets only")
    if args.close and (args.http2 or args.connections > 1):
        p.error("--close counts one connection at a time, over HTTP/1.1")
    low, high = (int(n) for n in args.requests.split(","))
    peers_python = None
    counts, misses = {}, {}
    for target in targets:
        if target in OURS:
            python = sys.executable
        else:
            peers_python = peers_python or peers.find_peers_python(args.peers_python, not args.no_install)
            python = peers_python
        counted = per_request(python, target, low, high, what, args.connections, args.cache, args.http2,
                              args.close)
        counts[target], misses[target] = counted if args.cache else (counted, None)
        peers.log(f"{target}: {counts[target]:.0f} instructions per request")
    print(f"{'target':<20} {'instructions/request':>20}" + (f" {'cache misses/request':>20}" if args.cache else ""))
    for target in targets:
        print(f"{target:<20} {counts[target]:>20.0f}" + (f" {misses[target]:>20.0f}" if args.cache else ""))
    for ours, peer in PAIRS.items():
        if ours in counts and peer in counts:
            print(f"{peer} / {ours}: {counts[peer] / counts[ours]:.2f}x the instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
