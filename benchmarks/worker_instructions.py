"""CPU instructions per request of a whole server process, on real sockets, counted.

    python benchmarks/worker_instructions.py                     # hello on a new connection each
    python benchmarks/worker_instructions.py --keep-alive        # hello on one connection
    python benchmarks/worker_instructions.py --targets asyncworker,granian --requests 300,1300
    python benchmarks/worker_instructions.py --keep-alive --connections 50   # as under wrk -c50
    python benchmarks/worker_instructions.py --keep-alive --connections 50 --case chunked

``instructions.py`` drives a protocol object over an in-memory transport: the worker's
accept path (``Listeners``, a connection served on its accepted socket), its connection
set-up and teardown and the loop itself are not in its count. This counts them: each
target runs as the suite starts it (``peers.py``), under valgrind's cachegrind with its
children traced, and a client outside valgrind sends requests one after another (hello, or
the request of a suite's case with ``--case``: ``browser``, ``chunked``, ...), each on a new
connection (``Connection: close``) or all on one keep-alive connection, over loopback. The target is stopped with SIGTERM, each process writes its count, and the
serving process's count (the largest: a master that forks its worker, granian's main
process) is taken. Two runs with different request counts, so start-up and shutdown cancel
out: (I(n2) - I(n1)) / (n2 - n1), after the same warm-up in both.

User space only, as cachegrind counts (the system calls' own work is the kernel's), and
every thread of the process (this worker's WSGI pool, granian's runtime threads). Under
valgrind the threads of a process take turns, so what a thread hands another is counted
once, however the two would overlap on two cores. By default the client waits for each
answer: a server that batches work across connections under load does none of that then.
With ``--connections N`` it keeps N connections busy at once, as wrk does: the server,
slowed down by valgrind, always has requests waiting, and batches what it batches under load.
"""

import argparse
import glob
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import peers
from cases import BY_NAME

TARGETS = ("asyncworker", "granian", "asyncworker-asgi", "granian-asgi")
WARM_UP = 300  # requests before the counted ones, in both runs
BOOT_TIMEOUT = 300.0  # seconds for a server to listen under valgrind
EXIT_TIMEOUT = 300.0  # seconds for it to exit after SIGTERM (valgrind writes its counts then)
ANSWER_TIMEOUT = 60.0  # seconds for an answer to come (one at a time, or any of those sent at once)


def request(keep_alive: bool, case: str = "hello") -> bytes:
    """The case's request as the suite sends it (``hello``: ``GET /``), with ``Connection:
    close`` when each request takes a new connection."""
    method, path, headers, body = BY_NAME[case].request()
    headers = [(name, value) for name, value in headers if name.lower() != "connection"]
    if not keep_alive:
        headers.append(("Connection", "close"))
    if body:
        headers.append(("Content-Length", str(len(body))))
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{fields}\r\n".encode() + body


_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def whole_answer(data: bytes) -> bool:
    """Whether ``data`` holds a whole answer: its head, then its Content-Length's bytes or
    the last chunk of a chunked body."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = _LENGTH.search(data, 0, end + 2)
    if length is None:
        return data.endswith(b"0\r\n\r\n")
    return len(data) >= end + 4 + int(length.group(1))


def read_answer(sock: socket.socket, until_eof: bool) -> None:
    """Read one answer (to its end of body, or to the connection's end)."""
    data = b""
    while not whole_answer(data) or until_eof:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    check_answer(data)


def check_answer(data: bytes) -> None:
    if not data.startswith(b"HTTP/1.1 200") or not whole_answer(data):
        raise RuntimeError(f"unexpected answer: {data[:200]!r}")


def send_requests(port: int, count: int, keep_alive: bool, sock: socket.socket | None,
                  case: str = "hello") -> socket.socket | None:
    payload = request(keep_alive, case)
    for _ in range(count):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT)
        sock.sendall(payload)
        read_answer(sock, until_eof=not keep_alive)
        if not keep_alive:
            sock.close()
            sock = None
    return sock


def send_concurrently(port: int, count: int, keep_alive: bool, connections: int, case: str = "hello",
                      late: float = 0.0) -> None:
    """``count`` requests over ``connections`` connections at once, as wrk sends them:
    each connection sends its next request when it has read its answer (on the same
    connection, or on a new one). The server under valgrind is the slower side by far, so
    it always has a request waiting on every connection, as under load. ``late``: a new
    connection sends its request that many seconds after its connect (the server has
    accepted it by then: a client accepted before its request comes)."""
    payload = request(keep_alive, case)
    selector = selectors.DefaultSelector()
    buffers: dict = {}
    waiting: list = []  # (when, sock): new connections whose request goes later
    sent = answered = 0

    def send_next(sock: socket.socket | None) -> None:
        nonlocal sent
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT)
            selector.register(sock, selectors.EVENT_READ)
            if late > 0:
                waiting.append((time.monotonic() + late, sock))
                sent += 1
                return
        sock.sendall(payload)
        buffers[sock] = b""
        sent += 1

    for _ in range(min(connections, count)):
        send_next(None)
    while answered < count:
        while waiting and waiting[0][0] <= time.monotonic():
            sock = waiting.pop(0)[1]
            sock.sendall(payload)
            buffers[sock] = b""
        ready = selector.select(max(0.0, waiting[0][0] - time.monotonic()) if waiting else ANSWER_TIMEOUT)
        if not ready and not waiting:
            raise RuntimeError(f"no answer for {ANSWER_TIMEOUT:g}s ({answered} of {count} answered)")
        for key, _ in ready:
            sock = key.fileobj
            piece = sock.recv(65536)
            buffers[sock] += piece
            if piece and (not keep_alive or not whole_answer(buffers[sock])):
                continue
            check_answer(buffers.pop(sock))
            answered += 1
            if not keep_alive or sent == count:
                selector.unregister(sock)
                sock.close()
                sock = None
            if sent < count:
                send_next(sock)
    selector.close()


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} during boot")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"not listening after {BOOT_TIMEOUT:.0f}s")


def count(target: peers.Target, requests: int, keep_alive: bool, out_dir: str, keep: str | None = None,
          connections: int = 1, cache_sim: bool = False, case: str = "hello", late: float = 0.0) -> dict:
    """Instructions of the serving process for WARM_UP + ``requests`` requests, start to exit
    (its cachegrind file copied into ``keep`` as ``<target>.<requests>.cg``, if given)."""
    prefix = ["valgrind", "--tool=cachegrind", f"--cache-sim={'yes' if cache_sim else 'no'}", "--trace-children=yes",
              f"--cachegrind-out-file={out_dir}/cg.%p"]
    for old in glob.glob(os.path.join(out_dir, "cg.*")):
        os.remove(old)
    peers.start(target, peers.APPS_DIR, prefix)
    proc = target.proc
    try:
        wait_listening(target.port, proc)
        if connections > 1 or late > 0:
            send_concurrently(target.port, WARM_UP + requests, keep_alive, connections, case, late)
        else:
            sock = send_requests(target.port, WARM_UP + requests, keep_alive, None, case)
            if sock is not None:
                sock.close()
        os.killpg(proc.pid, signal.SIGTERM)  # (the group: granian's workers stop on their own signal)
        proc.wait(EXIT_TIMEOUT)
    except BaseException:
        peers.log(peers.log_tail(target))
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        target.proc = None
    totals = []
    for path in glob.glob(os.path.join(out_dir, "cg.*")):
        events = summary(path)
        if events:
            totals.append((events["Ir"], path, events))
    if not totals:
        raise RuntimeError(f"no counts written: {peers.log_tail(target)}")
    _, path, events = max(totals)
    if keep is not None:
        shutil.copyfile(path, os.path.join(keep, f"{target.name}.{requests}.cg"))
    return events


def summary(path: str) -> dict:
    """The totals of a cachegrind file, by event name (Ir; with the cache simulated, the
    misses too: D1mr, DLmr, ...); empty if the process wrote none."""
    with open(path) as f:
        text = f.read()
    names = re.search(r"^events: (.+)$", text, re.M)
    totals = re.search(r"^summary: (.+)$", text, re.M)
    if names is None or totals is None:
        return {}
    return dict(zip(names.group(1).split(), (int(n) for n in totals.group(1).split())))


def per_request(low: dict, high: dict, requests: int) -> dict:
    """What one request costs: Ir, and with the cache simulated, first-level data misses
    (D1) and last-level misses (LL, instructions and data)."""
    delta = {name: (high[name] - low[name]) / requests for name in high}
    result = {"Ir": delta["Ir"]}
    if "D1mr" in delta:
        result["D1"] = delta["D1mr"] + delta["D1mw"]
        result["LL"] = delta["ILmr"] + delta["DLmr"] + delta["DLmw"]
    return result


def median_cost(costs: list) -> tuple[dict, str]:
    """The count of median instructions among ``costs`` (``per_request``'s, one a run; of an
    even number, the lower middle one), and the range of all, said after it ("" for one)."""
    ranked = sorted(costs, key=lambda cost: cost["Ir"])
    if len(ranked) == 1:
        return ranked[0], ""
    low, high = ranked[0]["Ir"], ranked[-1]["Ir"]
    return ranked[(len(ranked) - 1) // 2], f"   ({low:,.0f} to {high:,.0f}, {len(ranked)} counts)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default=",".join(TARGETS), help=f"of: {', '.join(peers.TARGET_NAMES)}")
    p.add_argument("--keep-alive", action="store_true", help="every request on one connection")
    p.add_argument("--requests", default="300,1300", help="the two counted request counts, n1,n2")
    p.add_argument("--cache-sim", action="store_true",
                   help="simulate the caches too (valgrind's model of this machine's): misses per request")
    p.add_argument("--connections", type=int, default=1,
                   help="connections sending at once (as wrk's -c; default 1: one request at a time)")
    p.add_argument("--case", default="hello", choices=[c for c in BY_NAME if BY_NAME[c].path != "/file"],
                   help="the suite's case whose request is sent (default: hello)")
    p.add_argument("--repeat", type=int, default=1,
                   help="count each target this many times and give the median and the range: with --connections "
                        "a count moves by a few percent between runs, as the requests of a loop pass batch")
    p.add_argument("--late", type=float, default=0.0, metavar="SECONDS",
                   help="a new connection sends its request this long after its connect: as under load, when a "
                        "client's connect is accepted before its request comes")
    p.add_argument("--peers-python", help="the interpreter of the peers (default: see peers.py)")
    p.add_argument("--no-install", action="store_true", help="do not create the peers' environment")
    p.add_argument("--keep", metavar="DIR", help="keep the serving process's cachegrind files in DIR "
                   "(where the difference goes: cg_diff DIR/T.n1.cg DIR/T.n2.cg | cg_annotate /dev/stdin)")
    args = p.parse_args(argv)
    low, high = (int(n) for n in args.requests.split(","))
    if high <= low:
        p.error("--requests n1,n2 needs n2 > n1")
    if args.connections < 1:
        p.error("--connections must be at least 1")
    if args.late < 0:
        p.error("--late must be at least 0")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.keep_alive and low < args.connections:
        # (each run opens min(connections, n) connections: fewer in the first, and the
        # difference would count the set-ups of the others as requests)
        p.error(f"--requests n1 must be at least --connections with --keep-alive (n1 {low} < {args.connections})")
    if not shutil.which("valgrind"):
        p.error("needs valgrind")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = set(names) - set(peers.TARGET_NAMES)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))}")
    peers_python = peers.find_peers_python(args.peers_python, install=not args.no_install)
    mode = "keep-alive connections" if args.keep_alive else "a new connection per request"
    mode += f", {args.connections} at once" if args.connections > 1 else ", one request at a time"
    mode += f", each new connection's request {args.late:g} s after its connect" if args.late else ""
    print(f"instructions per {args.case} request, {mode} ({low} and {high} requests after {WARM_UP})")
    results = {}
    with tempfile.TemporaryDirectory(prefix="worker-instructions-") as out_dir:
        for target in peers.make_targets(names, peers_python, peers.APPS_DIR):
            if target.skip:
                print(f"{target.name:20} skipped: {target.skip}")
                continue
            costs = []
            for _ in range(args.repeat):
                runs = [count(target, n, args.keep_alive, out_dir, args.keep, args.connections, args.cache_sim,
                              args.case, args.late)
                        for n in (low, high)]
                costs.append(per_request(*runs, high - low))
            cost, spread = median_cost(costs)
            results[target.name] = cost["Ir"]
            misses = f"   D1 misses {cost['D1']:>8,.0f}   LL misses {cost['LL']:>6,.1f}" if "D1" in cost else ""
            print(f"{target.name:20} {cost['Ir']:>10,.0f}{misses}{spread}", flush=True)
    for ours, peer in (("asyncworker", "granian"), ("asyncworker-asgi", "granian-asgi")):
        if ours in results and peer in results:
            print(f"{ours} / {peer}: {results[ours] / results[peer]:.2f}x the instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
