#!/usr/bin/env python
"""HTTP/2 (cleartext, prior knowledge) hello: this worker against its peers, with h2load.

    python benchmarks/http2_suite.py [--rounds 5] [--duration 5] [--targets a,b] [--peers-python PY]

Every target serves the suite's hello apps with one worker process, pinned to the first
core; ``h2load -c 10 -m 100 -D <duration>`` runs on the second (10 connections, 100
concurrent streams each). Rounds are interleaved (each round runs every target once); the
table gives the median req/s, the errors of every run, and paired ratios (the median of
the per-round ratios) against granian of the same app kind and against the best
pure-Python peer of the kind (gunicorn 25+'s own HTTP/2 in gthread and its asgi worker,
and hypercorn). The native app is compared with the ASGI peers (marked *).

Needs ``h2load`` (Debian's nghttp2-client), the ``h2`` package in this interpreter (the
``http2`` extra), and the peers (see peers.py; hypercorn and h2 among them).
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import peers

H2C = ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge", "--keep-alive", str(peers.KEEP_ALIVE)]
OURS = ("asyncworker", "asyncworker-asgi", "asyncworker-native")
KIND = {"asyncworker": "wsgi", "gthread": "wsgi", "granian": "wsgi", "asyncworker-asgi": "asgi",
        "gunicorn-asgi": "asgi", "hypercorn": "asgi", "granian-asgi": "asgi", "asyncworker-native": "native"}
GRANIAN = {"wsgi": "granian", "asgi": "granian-asgi", "native": "granian-asgi"}
PYTHON_PEERS = {"wsgi": ("gthread",), "asgi": ("gunicorn-asgi", "hypercorn"), "native": ("gunicorn-asgi", "hypercorn")}
RESULT = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                      r"(\d+) errored, (\d+) timeout")


def command(name: str, ours: str, theirs: str, port: int) -> tuple[list, dict]:
    """The command line and extra environment of target ``name`` on ``port``."""
    bind = f"127.0.0.1:{port}"
    gunicorn = ["-m", "gunicorn", "-w", "1", "-b", bind, *H2C]
    if name in OURS:
        kind = KIND[name]
        app = {"wsgi": "hello:application", "asgi": "asgi_hello:app", "native": "native_hello:app"}[kind]
        return [ours, *gunicorn, "-k", "server.workers.AsyncWorker", "--threads", str(peers.THREADS), app], \
            {"ASYNCWORKER_APP_KIND": kind}
    if name == "gthread":
        return [theirs, *gunicorn, "-k", "gthread", "--threads", str(peers.THREADS), "hello:application"], {}
    if name == "gunicorn-asgi":
        return [theirs, *gunicorn, "-k", "asgi", "asgi_hello:app"], {}
    if name == "hypercorn":
        return [theirs, "-m", "hypercorn", "--workers", "1", "-k", "uvloop", "--bind", bind,
                "--keep-alive", str(peers.KEEP_ALIVE), "asgi_hello:app"], {}
    interface, app = ("wsgi", "hello:application") if name == "granian" else ("asgi", "asgi_hello:app")
    return [theirs, "-m", "granian", "--interface", interface, "--http", "2", "--workers", "1",
            "--host", "127.0.0.1", "--port", str(port), app], {}


def start(name: str, ours: str, theirs: str) -> tuple[subprocess.Popen, int]:
    port = peers.free_port()
    cmd, env = command(name, ours, theirs, port)
    env = {**peers.clean_env(), "PYTHONPATH": peers.REPO, **env}
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=peers.APPS_DIR, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, port


def h2load(port: int, duration: int, requests: int | None = None, path: str = "/") -> dict:
    load = ["-n", str(requests)] if requests else ["-D", str(duration)]
    cmd = ["taskset", "-c", "1", "h2load", "-c", "10", "-m", "100", *load, f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 4 + 60).stdout
    rate, counts = RESULT.search(out), REQUESTS.search(out)
    if rate is None or counts is None:
        return {"rps": 0.0, "errors": -1, "succeeded": 0}
    _, _, _, succeeded, failed, errored, timeout = (int(n) for n in counts.groups())
    return {"rps": float(rate.group(1)), "errors": failed + errored + timeout, "succeeded": succeeded}


def ready(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if h2load(port, 1, requests=10)["succeeded"] == 10:
            return True
        time.sleep(0.3)
    return False


def paired(runs: dict, a: str, b: str) -> float | None:
    ratios = [x["rps"] / y["rps"] for x, y in zip(runs.get(a, []), runs.get(b, [])) if y["rps"]]
    return statistics.median(ratios) if ratios else None


def report(runs: dict) -> None:
    print(f"{'target':<20} {'req/s':>9} {'errors':>7}  {'vs granian':>11}  vs best pure-Python peer")
    for name, results in runs.items():
        kind = KIND[name]
        rps = statistics.median(r["rps"] for r in results)
        errors = sum(r["errors"] for r in results)
        granian = paired(runs, name, GRANIAN[kind]) if name not in GRANIAN.values() else None
        star = "*" if kind == "native" else ""
        python = [(p, paired(runs, name, p)) for p in PYTHON_PEERS[kind] if p in runs and p != name]
        python = [(p, r) for p, r in python if r is not None]
        weakest = min(python, key=lambda pr: pr[1]) if python and name in OURS else None
        print(f"{name:<20} {rps:>9.0f} {errors:>7}  "
              f"{(f'{granian:.2f}x' + star) if granian else '':>11}  "
              f"{f'{weakest[1]:.2f}x {weakest[0]}' if weakest else ''}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--targets", default=",".join(KIND))
    p.add_argument("--peers-python", default=None)
    p.add_argument("--no-install", action="store_true")
    args = p.parse_args(argv)
    if shutil.which("h2load") is None or shutil.which("taskset") is None:
        print("needs h2load (apt-get install nghttp2-client) and taskset", file=sys.stderr)
        return 2
    names = [n for n in args.targets.split(",") if n]
    theirs = peers.find_peers_python(args.peers_python, not args.no_install)
    procs = {name: start(name, sys.executable, theirs) for name in names}
    try:
        deadline = time.monotonic() + 30
        live = [n for n in names if ready(procs[n][1], deadline) or peers.log(f"n/a  {n}: no HTTP/2 answer")]
        runs: dict = {n: [] for n in live}
        for round_ in range(args.rounds):
            for name in live:
                runs[name].append(h2load(procs[name][1], args.duration))
                peers.log(f"round {round_ + 1} {name}: {runs[name][-1]}")
        report(runs)
    finally:
        stop([proc for proc, _ in procs.values()])
    return 0


def stop(procs) -> None:
    """Stop each server's process group: TERM, then KILL after 10 s."""
    for proc in procs:
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


if __name__ == "__main__":
    sys.exit(main())
