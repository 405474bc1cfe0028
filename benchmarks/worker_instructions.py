"""CPU instructions per request of a whole server process, on real sockets, counted.

    python benchmarks/worker_instructions.py                     # hello on a new connection each
    python benchmarks/worker_instructions.py --keep-alive        # hello on one connection
    python benchmarks/worker_instructions.py --targets asyncworker,granian --requests 300,1300

``instructions.py`` drives a protocol object over an in-memory transport: the worker's
accept path (``Listeners``, a connection served on its accepted socket), its connection
set-up and teardown and the loop itself are not in its count. This counts them: each
target runs as the suite starts it (``peers.py``), under valgrind's cachegrind with its
children traced, and a client outside valgrind sends hello requests one after another
(``Connection: close``, each on a new connection, or all on one keep-alive connection) over
loopback. The target is stopped with SIGTERM, each process writes its count, and the
serving process's count (the largest: a master that forks its worker, granian's main
process) is taken. Two runs with different request counts, so start-up and shutdown cancel
out: (I(n2) - I(n1)) / (n2 - n1), after the same warm-up in both.

User space only, as cachegrind counts (the system calls' own work is the kernel's), and
every thread of the process (this worker's WSGI pool, granian's runtime threads). Under
valgrind the threads of a process take turns, so what a thread hands another is counted
once, however the two would overlap on two cores. The client waits for each answer: a
server that batches work across connections under load does none of that here.
"""

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import peers

TARGETS = ("asyncworker", "granian", "asyncworker-asgi", "granian-asgi")
WARM_UP = 300  # requests before the counted ones, in both runs
BOOT_TIMEOUT = 300.0  # seconds for a server to listen under valgrind
EXIT_TIMEOUT = 300.0  # seconds for it to exit after SIGTERM (valgrind writes its counts then)
HELLO = b"Hello, world!\n"


def request(keep_alive: bool) -> bytes:
    ending = b"" if keep_alive else b"Connection: close\r\n"
    return b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + ending + b"\r\n"


def read_hello(sock: socket.socket, until_eof: bool) -> None:
    """Read one hello response (to its end of body, or to the connection's end)."""
    data = b""
    while not data.endswith(HELLO) or until_eof:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    if not data.startswith(b"HTTP/1.1 200") or not data.endswith(HELLO):
        raise RuntimeError(f"unexpected answer: {data[:200]!r}")


def send_requests(port: int, count: int, keep_alive: bool, sock: socket.socket | None) -> socket.socket | None:
    payload = request(keep_alive)
    for _ in range(count):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(payload)
        read_hello(sock, until_eof=not keep_alive)
        if not keep_alive:
            sock.close()
            sock = None
    return sock


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


def count(target: peers.Target, requests: int, keep_alive: bool, out_dir: str) -> int:
    """Instructions of the serving process for WARM_UP + ``requests`` requests, start to exit."""
    prefix = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
              f"--cachegrind-out-file={out_dir}/cg.%p"]
    for old in glob.glob(os.path.join(out_dir, "cg.*")):
        os.remove(old)
    peers.start(target, peers.APPS_DIR, prefix)
    proc = target.proc
    try:
        wait_listening(target.port, proc)
        sock = send_requests(target.port, WARM_UP + requests, keep_alive, None)
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
        with open(path) as f:
            found = re.search(r"^summary: (\d+)", f.read(), re.M)
        if found:
            totals.append(int(found.group(1)))
    if not totals:
        raise RuntimeError(f"no counts written: {peers.log_tail(target)}")
    return max(totals)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default=",".join(TARGETS), help=f"of: {', '.join(peers.TARGET_NAMES)}")
    p.add_argument("--keep-alive", action="store_true", help="every request on one connection")
    p.add_argument("--requests", default="300,1300", help="the two counted request counts, n1,n2")
    p.add_argument("--peers-python", help="the interpreter of the peers (default: see peers.py)")
    p.add_argument("--no-install", action="store_true", help="do not create the peers' environment")
    args = p.parse_args(argv)
    if not shutil.which("valgrind"):
        p.error("needs valgrind")
    low, high = (int(n) for n in args.requests.split(","))
    if high <= low:
        p.error("--requests n1,n2 needs n2 > n1")
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = set(names) - set(peers.TARGET_NAMES)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))}")
    peers_python = peers.find_peers_python(args.peers_python, install=not args.no_install)
    mode = "one keep-alive connection" if args.keep_alive else "a new connection per request"
    print(f"instructions per hello request, {mode} ({low} and {high} requests after {WARM_UP})")
    results = {}
    with tempfile.TemporaryDirectory(prefix="worker-instructions-") as out_dir:
        for target in peers.make_targets(names, peers_python, peers.APPS_DIR):
            if target.skip:
                print(f"{target.name:20} skipped: {target.skip}")
                continue
            i_low = count(target, low, args.keep_alive, out_dir)
            i_high = count(target, high, args.keep_alive, out_dir)
            results[target.name] = (i_high - i_low) / (high - low)
            print(f"{target.name:20} {results[target.name]:>10,.0f}", flush=True)
    for ours, peer in (("asyncworker", "granian"), ("asyncworker-asgi", "granian-asgi")):
        if ours in results and peer in results:
            print(f"{ours} / {peer}: {results[ours] / results[peer]:.2f}x the instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
