"""This worker against itself at another revision: paired rounds, the ratio of each pair.

    python benchmarks/pairs.py --before HEAD~1                         # ASGI hello, c=50
    python benchmarks/pairs.py --before 0becc8f --kind wsgi --connections 1000 --rounds 8
    python benchmarks/pairs.py --before HEAD~3 --http2     # h2load -c 10 -m 100, cleartext HTTP/2

A change's effect on throughput is a few percent; on a shared machine one run differs from
the next by more. Both builds serve at once, one worker each, pinned to the server core;
the load (``wrk -t1`` on the other core) alternates between them, before then after, after
then before, so both see the same moments of the machine. The figure is the median of the
paired ratios (after / before). ``--http2``: both serve cleartext HTTP/2 too and the load
is http2_suite.py's ``h2load -c 10 -m 100``. The revision is checked out in a temporary git worktree
with its compiled parser built there, and removed at the end; "after" is this tree.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import load
import peers

BOOT_TIMEOUT = 30.0
BUILDS = ("before", "after")
BUILD_TIMEOUT = 300


def paired_ratios(before: list[float], after: list[float]) -> list[float]:
    """after / before of each round (a round whose before is 0 has no ratio)."""
    return [b / a for a, b in zip(before, after) if a > 0]


def round_order(i: int) -> tuple[int, int]:
    """Which build goes first in round ``i``: before first, then after first, in turn."""
    return (0, 1) if i % 2 == 0 else (1, 0)


def checkout(rev: str, into: str) -> None:
    """``rev`` of this repository in a detached worktree at ``into``, its C extension built."""
    subprocess.run(["git", "-C", peers.REPO, "worktree", "add", "--detach", into, rev], check=True,
                   capture_output=True, timeout=120)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=into, check=True,
                   capture_output=True, timeout=BUILD_TIMEOUT)


def remove_checkout(path: str) -> None:
    subprocess.run(["git", "-C", peers.REPO, "worktree", "remove", "--force", path], capture_output=True, timeout=120)
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["git", "-C", peers.REPO, "worktree", "prune"], capture_output=True, timeout=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="the git revision to compare this tree with")
    p.add_argument("--kind", choices=("wsgi", "asgi", "native"), default="asgi")
    p.add_argument("--path", default="/", help="the path requested (benchmarks/apps serve /, /chunked, /100k)")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--duration", type=int, default=2, help="seconds per wrk run")
    p.add_argument("--close", action="store_true",
                   help="each request on a new connection (wrk sends Connection: close)")
    p.add_argument("--http2", action="store_true", help="HTTP/2 by prior knowledge, loaded by h2load")
    args = p.parse_args(argv)
    if args.http2:
        return http2_pairs(args)

    server_prefix, load_prefix, _ = peers.pinning()
    headers = ("Connection: close",) if args.close else ()
    name = {"wsgi": "asyncworker", "asgi": "asyncworker-asgi", "native": "asyncworker-native"}[args.kind]
    targets = peers.make_targets({name}, sys.executable, peers.APPS_DIR) + \
        peers.make_targets({name}, sys.executable, peers.APPS_DIR)
    if targets[0].skip:
        print(f"{name}: {targets[0].skip}", file=sys.stderr)
        return 2
    scratch = tempfile.mkdtemp(prefix="pairs-")
    tree = os.path.join(scratch, "before")  # (git makes it)
    try:
        checkout(args.before, tree)
        for target, source in zip(targets, (tree, peers.REPO)):
            peers.start(target, peers.APPS_DIR, server_prefix, source=source)
        for target in targets:
            peers.wait_port(target, time.monotonic() + BOOT_TIMEOUT)
        for target in targets:  # warm-up, not recorded
            load.run_wrk(load_prefix, target.port, args.path, args.connections, 1, headers=headers)

        def one_run(which: int) -> tuple[float, int]:
            run = load.run_wrk(load_prefix, targets[which].port, args.path, args.connections, args.duration,
                               headers=headers)
            return run["rps"], load.n_errors(run)

        rates = run_rounds(args.rounds, one_run)
    finally:
        for target in targets:
            peers.stop(target)
        remove_checkout(tree)
        shutil.rmtree(scratch, ignore_errors=True)
    summary(f"{name} {args.path} c={args.connections}{' close' if args.close else ''}", rates, args.rounds)
    return 0


def run_rounds(rounds: int, one_run) -> list[list[float]]:
    """req/s of each build, round by round in alternating order; ``one_run(which)`` gives
    ``(req/s, errors)`` of one load run on build ``which`` (0 before, 1 after)."""
    rates: list[list[float]] = [[], []]
    for i in range(rounds):
        for which in round_order(i):
            rps, errors = one_run(which)
            if errors:
                raise RuntimeError(f"{BUILDS[which]}: {errors} errors")
            rates[which].append(rps)
        print(f"round {i + 1}: before {rates[0][-1]:.0f} req/s, after {rates[1][-1]:.0f} req/s", flush=True)
    return rates


def summary(what: str, rates: list[list[float]], rounds: int) -> None:
    ratios = paired_ratios(*rates)
    print(f"{what}: before {statistics.median(rates[0]):.0f} req/s, "
          f"after {statistics.median(rates[1]):.0f} req/s (medians of {rounds} rounds); "
          f"after/before, median of the paired ratios: {statistics.median(ratios):.3f}x "
          f"(from {min(ratios):.2f}x to {max(ratios):.2f}x)")


def http2_pairs(args) -> int:
    """As ``main``, over cleartext HTTP/2 with http2_suite.py's servers and load."""
    import http2_suite

    name = {"wsgi": "asyncworker", "asgi": "asyncworker-asgi", "native": "asyncworker-native"}[args.kind]
    scratch = tempfile.mkdtemp(prefix="pairs-")
    tree = os.path.join(scratch, "before")
    servers = []
    try:
        checkout(args.before, tree)
        for source in (tree, peers.REPO):
            port = peers.free_port()
            cmd, env = http2_suite.command(name, sys.executable, sys.executable, port)
            env = {**peers.clean_env(), "PYTHONPATH": peers.APPS_DIR, **env}
            servers.append((subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=source, env=env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True), port))
        for _, port in servers:
            if not http2_suite.ready(port, time.monotonic() + BOOT_TIMEOUT):
                raise RuntimeError(f"the server on port {port} does not answer over HTTP/2")

        def one_run(which: int) -> tuple[float, int]:
            run = http2_suite.h2load(servers[which][1], args.duration, path=args.path)
            return run["rps"], run["errors"]

        rates = run_rounds(args.rounds, one_run)
    finally:
        http2_suite.stop([proc for proc, _ in servers])
        remove_checkout(tree)
        shutil.rmtree(scratch, ignore_errors=True)
    summary(f"{name} HTTP/2 {args.path} h2load -c 10 -m 100", rates, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
