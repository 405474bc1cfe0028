#!/usr/bin/env python
"""Compare the native hello world (server.web) with aiohttp's own web server, with wrk.

    python benchmarks/bench_native.py [--duration 5] [--rounds 5] [--connections 50]
                                      [--json out.jsonl] [--quick] [--servers native,aiohttp]

Servers (one gunicorn worker each, started once, kept running for all rounds):
  native   -k server.workers.AsyncWorker           benchmarks/apps/native_hello.py
  aiohttp  -k aiohttp.GunicornUVLoopWebWorker      benchmarks/apps/aiohttp_hello.py

Both answer ``GET /`` with 200, text/plain, Content-Length and ``Hello, world!\\n``.
gunicorn is pinned to the first core, wrk to the second; rounds are interleaved
and the reported ratio is the median over rounds of req/s(native) / req/s(aiohttp).
The helpers (pinning, start/stop, wrk parsing, table) are bench_wsgi.py's.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_wsgi as bw  # noqa: E402

SERVERS = {
    "native": ("server.workers.AsyncWorker", "native_hello:app"),
    "aiohttp": ("aiohttp.GunicornUVLoopWebWorker", "aiohttp_hello:app"),
}
BASELINE = "aiohttp"


def gunicorn_cmd(worker_class, app, port):
    return [sys.executable, "-m", "gunicorn",
            "-k", worker_class, "--workers", "1",
            "--bind", f"127.0.0.1:{port}",
            "--keep-alive", str(bw.KEEP_ALIVE),
            "--no-control-socket",
            "--log-level", "warning",
            "--graceful-timeout", "5",
            "--pythonpath", bw.REPO,
            "--pythonpath", bw.APPS_DIR,
            app]  # no --access-logfile: access log stays off


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded wrk seconds per server first (default 1)")
    p.add_argument("--json", metavar="FILE", help="append raw per-run results as JSON lines")
    p.add_argument("--quick", action="store_true", help="smoke test: duration 2, rounds 1")
    p.add_argument("--servers", default=",".join(SERVERS), help=f"subset of {','.join(SERVERS)}")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 2, 1
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    return args


def boot_all(args, server_prefix, ready):
    for name in args.servers:
        worker_class, app = SERVERS[name]
        reason = bw.worker_importable(worker_class)
        if reason:
            bw.log(f"SKIP {name}: cannot import worker class {worker_class}: {reason}")
            continue
        port = bw.free_port()
        cmd = gunicorn_cmd(worker_class, app, port)
        srv = bw.start_server(name, cmd, server_prefix)
        ready[name] = (srv, port)
        try:
            status, body = bw.wait_ready(srv, port)
            if status != 200 or body != bw.EXPECTED_BODY:
                raise RuntimeError(f"bad response: status {status}, body {body[:80]!r}")
        except Exception as exc:
            bw.log(f"ABORT {name}: {exc}\n  cmd: {' '.join(cmd)}\n{bw.log_tail(srv)}")
            bw.stop_server(ready.pop(name)[0])
            continue
        bw.log(f"ready {name}: port {port}, pid {srv['proc'].pid}")


def measure(args, ready, wrk_prefix, out):
    runs = []
    if args.warmup:
        for _, port in ready.values():
            bw.run_wrk(wrk_prefix, port, args.connections, args.warmup)
    for rnd in range(1, args.rounds + 1):
        for name, (srv, port) in list(ready.items()):
            if srv["proc"].poll() is not None:
                bw.log(f"DROP {name}: server exited\n{bw.log_tail(srv)}")
                bw.stop_server(ready.pop(name)[0])
                continue
            try:
                res = bw.run_wrk(wrk_prefix, port, args.connections, args.duration)
            except Exception as exc:
                bw.log(f"round {rnd} {name}: wrk failed: {exc}")
                continue
            res.update(round=rnd, server=name, worker_class=SERVERS[name][0],
                       connections=args.connections, duration=args.duration)
            runs.append(res)
            bw.log(f"round {rnd} {name:<8} {res['rps']:>10.0f} req/s  p50 {bw.fmt(res['p50_ms'], '.2f')} ms  "
                   f"p99 {bw.fmt(res['p99_ms'], '.2f')} ms  errors {bw.n_errors(res)}")
            if out:
                out.write(json.dumps(res) + "\n")
                out.flush()
    return runs


def main(argv=None):
    args = parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk not found on PATH")
    server_prefix, wrk_prefix = bw.pinning()
    bw.log(f"duration {args.duration}s x {args.rounds} round(s), {args.connections} connections, "
           f"pinning: server {' '.join(server_prefix) or 'none'}, wrk {' '.join(wrk_prefix) or 'none'}")
    bw.BASELINE = BASELINE  # used by print_table's ratio column
    ready = {}
    out = open(args.json, "a") if args.json else None
    try:
        boot_all(args, server_prefix, ready)
        if not ready:
            sys.exit("no server could be started")
        runs = measure(args, ready, wrk_prefix, out)
        bw.print_table(runs, args.servers)
    except KeyboardInterrupt:
        bw.log("interrupted")
        return 130
    finally:
        for srv, _ in ready.values():
            bw.stop_server(srv)
        if out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
