#!/usr/bin/env python
"""Compare WSGI hello-world throughput/latency of gunicorn workers with wrk.

    python benchmarks/bench_wsgi.py [--duration 5] [--rounds 3] [--threads 8]
                                    [--connections 50] [--json out.jsonl]
                                    [--quick] [--servers asyncworker,gthread,sync]

Servers (one worker process each, started once, kept running for all rounds):
  asyncworker  -k server.workers.AsyncWorker --threads N   (this project)
  gthread      -k gthread --threads N
  sync         -k sync                 (no --threads: gunicorn would turn
                                        "sync" with threads > 1 into gthread)
gunicorn is pinned to core 0, wrk to core 1. Rounds are interleaved:
for each round, every server is loaded once, in turn. See benchmarks/README.md.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS_DIR = os.path.join(REPO, "benchmarks", "apps")
APP = "hello:application"
EXPECTED_BODY = b"Hello, world!\n"
BOOT_DEADLINE = 20.0   # seconds to wait for a server to answer its first GET
STOP_GRACE = 10.0      # seconds between SIGTERM and SIGKILL
KEEP_ALIVE = 5         # same for all servers (gthread's default would be 2)

# name -> (gunicorn worker class, takes --threads)
SERVERS = {
    "asyncworker": ("server.workers.AsyncWorker", True),
    "gthread": ("gthread", True),
    "sync": ("sync", False),
}
BASELINE = "gthread"


# ---------------------------------------------------------------- helpers

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinning():
    """Return (server_prefix, wrk_prefix) taskset commands, or no pinning."""
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (ncpu or 1) < 2 or not shutil.which("taskset"):
        log(f"WARNING: {ncpu} usable core(s) or no taskset: running UNPINNED "
            "(server and wrk compete for the same CPU; numbers are less meaningful)")
        return [], []
    cores = sorted(os.sched_getaffinity(0))
    return ["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[1])]


def worker_importable(worker_class):
    """Check a dotted worker class imports; return None if fine, else a reason."""
    if "." not in worker_class:
        return None  # gunicorn built-in short name
    module, _, name = worker_class.rpartition(".")
    code = f"import {module} as m; getattr(m, {name!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


# ---------------------------------------------------------------- servers

def gunicorn_cmd(worker_class, takes_threads, threads, port):
    cmd = [sys.executable, "-m", "gunicorn",
           "-k", worker_class, "--workers", "1",
           "--bind", f"127.0.0.1:{port}",
           "--keep-alive", str(KEEP_ALIVE),
           "--no-control-socket",
           "--log-level", "warning",
           "--graceful-timeout", "5",
           "--pythonpath", APPS_DIR]
    if takes_threads:
        cmd += ["--threads", str(threads)]
    return cmd + [APP]   # no --access-logfile: access log stays off


def start_server(name, cmd, prefix):
    logf = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    proc = subprocess.Popen(prefix + cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True)  # own group: no stray Ctrl-C, clean kill
    return {"name": name, "proc": proc, "log": logf.name, "cmd": cmd}


def log_tail(srv, n=15):
    try:
        with open(srv["log"], errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def http_get(port, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(srv, port):
    """Poll GET / until it answers or the deadline passes; return (status, body)."""
    deadline = time.monotonic() + BOOT_DEADLINE
    last_err = None
    while time.monotonic() < deadline:
        if srv["proc"].poll() is not None:
            raise RuntimeError(f"exited with code {srv['proc'].returncode} during boot")
        try:
            return http_get(port)
        except (OSError, http.client.HTTPException) as exc:
            last_err = exc
            time.sleep(0.1)
    raise RuntimeError(f"no HTTP answer within {BOOT_DEADLINE:.0f}s (last error: {last_err})")


def stop_server(srv):
    proc = srv["proc"]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)   # gunicorn master: graceful shutdown
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            log(f"  {srv['name']}: no exit {STOP_GRACE:.0f}s after SIGTERM, sending SIGKILL")
    try:   # the group we created: also catches a worker orphaned by a dead master
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    try:
        os.unlink(srv["log"])
    except OSError:
        pass


# ---------------------------------------------------------------- wrk

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unparsable wrk time {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out):
    """Extract requests/s, p50/p99 (ms), total requests and errors from wrk --latency output."""
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
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock or (0,) * 4)))
    return {
        "rps": float(rps[0]),
        "p50_ms": to_ms(p50[0]) if p50 else None,
        "p99_ms": to_ms(p99[0]) if p99 else None,
        "requests": int(total[0]) if total else None,
        "socket_errors": errors,
        "non2xx": int(non2xx[0]) if non2xx else 0,
    }


def run_wrk(prefix, port, connections, duration):
    cmd = prefix + ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                    f"http://127.0.0.1:{port}/"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exit {proc.returncode}: {proc.stderr.strip()}")
    return parse_wrk(proc.stdout)


def n_errors(run):
    return sum(run["socket_errors"].values()) + run["non2xx"]


# ---------------------------------------------------------------- report

def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def paired_ratio(runs, name):
    """Median over rounds of rps(name)/rps(baseline), using rounds where both ran."""
    by_round = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["server"]] = r["rps"]
    ratios = [d[name] / d[BASELINE] for d in by_round.values()
              if name in d and d.get(BASELINE)]
    return median_or_none(ratios)


def print_table(runs, names):
    print()
    print(f"{'server':<12} {'runs':>4} {'req/s median':>12} {'[min - max]':>19} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs ' + BASELINE:>11}")
    for name in names:
        mine = [r for r in runs if r["server"] == name]
        if not mine:
            print(f"{name:<12} {0:>4}  (not measured)")
            continue
        rps = [r["rps"] for r in mine]
        ratio = paired_ratio(runs, name)
        print(f"{name:<12} {len(mine):>4} {statistics.median(rps):>12.0f} "
              f"{f'[{min(rps):.0f} - {max(rps):.0f}]':>19} "
              f"{fmt(median_or_none(r['p50_ms'] for r in mine), '.2f'):>8} "
              f"{fmt(median_or_none(r['p99_ms'] for r in mine), '.2f'):>8} "
              f"{sum(n_errors(r) for r in mine):>7} "
              f"{fmt(ratio, '.2f') + 'x' if ratio else 'n/a':>11}")
    print("p50/p99: median over rounds; errors: wrk socket errors + non-2xx/3xx, summed over rounds;")
    print(f"vs {BASELINE}: median over rounds of the per-round req/s ratio.")


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--threads", type=int, default=8, help="--threads for asyncworker/gthread (default 8)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded wrk seconds per server before round 1 (default 1, 0=off)")
    p.add_argument("--json", metavar="FILE", help="append raw per-run results as JSON lines")
    p.add_argument("--quick", action="store_true", help="smoke test: duration 2, rounds 1")
    p.add_argument("--servers", default=",".join(SERVERS),
                   help=f"comma-separated subset of {','.join(SERVERS)}")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 2, 1
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    return args


def boot_all(args, server_prefix, ready):
    """Start and check each server, filling ready={name: (srv, port)} with usable ones.

    ready is the caller's dict so a server is stopped even on Ctrl-C mid-boot.
    """
    for name in args.servers:
        worker_class, takes_threads = SERVERS[name]
        reason = worker_importable(worker_class)
        if reason:
            log(f"SKIP {name}: cannot import worker class {worker_class}: {reason}")
            continue
        port = free_port()
        cmd = gunicorn_cmd(worker_class, takes_threads, args.threads, port)
        srv = start_server(name, cmd, server_prefix)
        ready[name] = (srv, port)   # registered before checks so it is always stopped
        try:
            status, body = wait_ready(srv, port)
            if status != 200 or body != EXPECTED_BODY:
                raise RuntimeError(f"bad response: status {status}, body {body[:80]!r} "
                                   f"(expected 200, {EXPECTED_BODY!r})")
        except (RuntimeError, OSError, http.client.HTTPException) as exc:
            log(f"ABORT {name}: {exc}\n  cmd: {' '.join(cmd)}\n{log_tail(srv)}")
            stop_server(ready.pop(name)[0])
            continue
        log(f"ready {name}: port {port}, pid {srv['proc'].pid}")


def measure(args, ready, wrk_prefix, out):
    runs = []
    if args.warmup:
        for name, (_, port) in ready.items():
            run_wrk(wrk_prefix, port, args.connections, args.warmup)
    for rnd in range(1, args.rounds + 1):
        for name, (srv, port) in list(ready.items()):
            if srv["proc"].poll() is not None:
                log(f"DROP {name}: server exited (code {srv['proc'].returncode})\n{log_tail(srv)}")
                stop_server(ready.pop(name)[0])
                continue
            try:
                res = run_wrk(wrk_prefix, port, args.connections, args.duration)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                log(f"round {rnd} {name}: wrk failed: {exc}")
                continue
            res.update(round=rnd, server=name, worker_class=SERVERS[name][0],
                       threads=args.threads if SERVERS[name][1] else 1,
                       connections=args.connections, duration=args.duration,
                       keep_alive=KEEP_ALIVE, time=time.time())
            runs.append(res)
            log(f"round {rnd} {name:<12} {res['rps']:>10.0f} req/s  p50 {fmt(res['p50_ms'], '.2f')} ms  "
                f"p99 {fmt(res['p99_ms'], '.2f')} ms  errors {n_errors(res)}")
            if out:
                out.write(json.dumps(res) + "\n")
                out.flush()
    return runs


def main(argv=None):
    args = parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk not found on PATH")
    server_prefix, wrk_prefix = pinning()
    log(f"duration {args.duration}s x {args.rounds} round(s), {args.connections} connections, "
        f"threads {args.threads}, keep-alive {KEEP_ALIVE}s, "
        f"pinning: server {' '.join(server_prefix) or 'none'}, wrk {' '.join(wrk_prefix) or 'none'}")
    ready = {}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    out = open(args.json, "a") if args.json else None
    try:
        boot_all(args, server_prefix, ready)
        if not ready:
            sys.exit("no server could be started")
        runs = measure(args, ready, wrk_prefix, out)
        print_table(runs, args.servers)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for srv, _ in ready.values():
            stop_server(srv)
        if out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
