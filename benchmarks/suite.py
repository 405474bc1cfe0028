#!/usr/bin/env python
"""The benchmark suite: this worker against its peers, case by case, in the same run.

    python benchmarks/suite.py [--quick] [--duration 5] [--rounds 3] [--cases ...]
                               [--targets ...] [--json FILE] [--peers-python PY]

Every target (a server serving one kind of app, see peers.py) is started once,
its answer to every case is checked once, then the rounds run interleaved:
for each round, each case, each target, one pinned ``wrk -t1`` run. At c=1000
fresh probe connections and the accept queue are watched during the run. Before
the rounds, while the workers are fresh, the RSS growth per idle keep-alive
connection is measured. One
table goes to stdout (medians, paired ratios), then the issue's targets with
PASS/MISS; progress and skips to stderr; raw results as JSON lines with --json.
See benchmarks/README.md.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import load
import peers

BOOT_DEADLINE = 30.0  # seconds for all targets to listen
HELLO = b"Hello, world!\n"
POST_SIZE = 1024 * 1024
CHUNKED_SIZE = 16 * 4096
REFERENCES = ("gthread", "uvicorn", "granian")  # the ratio columns


@dataclass(frozen=True)
class Case:
    name: str
    kinds: tuple  # app kinds that take part
    path: str
    connections: int
    group: str = ""  # cases with the same request and load: ratios may use a reference of another kind
    post: int = 0  # request body size (POST)
    watch: bool = False  # probes and accept queue during the run


CASES = (
    Case("hello", ("wsgi",), "/", 50, group="hello"),
    Case("asgi-hello", ("asgi",), "/", 50, group="hello"),
    Case("native-hello", ("native",), "/", 50, group="hello"),
    Case("hello-c1", ("wsgi", "asgi", "native"), "/", 1),
    Case("chunked", ("wsgi",), "/chunked", 50),
    Case("echo-1MiB", ("wsgi",), "/echo", 50, post=POST_SIZE),
    Case("hello-c1000", ("wsgi", "asgi", "native"), "/", 1000, watch=True),
)
CASE_NAMES = tuple(c.name for c in CASES)
log = peers.log


# ---------------------------------------------------------------- checks

def check(case: Case, target: peers.Target) -> str:
    """One request of ``case`` to ``target``; "" if the answer is right, else what is wrong."""
    body = b"x" * case.post
    try:
        r = load.fetch(target.port, case.path, "POST" if case.post else "GET", body)
    except (OSError, ValueError) as exc:
        return f"no answer: {type(exc).__name__}: {exc}"
    if r.status != 200:
        return f"status {r.status}"
    if case.post:
        ok = r.body.strip() == str(case.post).encode()
    elif case.path == "/chunked":
        ok = len(r.body) == CHUNKED_SIZE and "content-length" not in r.headers
    elif target.kind == "wsgi":
        ok = r.body == HELLO
    else:
        ok = bool(r.body)  # the ASGI and native hello apps belong to their own modules
    return "" if ok else f"unexpected answer: headers {r.headers}, body {r.body[:60]!r}"


def boot(targets, apps_dir: str, prefix: list[str]) -> list:
    """Start every runnable target; return those that listen."""
    for t in targets:
        if t.skip:
            log(f"n/a  {t.name}: {t.skip}")
            continue
        peers.start(t, apps_dir, prefix)
    deadline = time.monotonic() + BOOT_DEADLINE
    ready = []
    for t in targets:
        if t.skip:
            continue
        try:
            peers.wait_port(t, deadline)
        except RuntimeError as exc:
            t.skip = str(exc)
            log(f"FAIL {t.name}: {exc}\n  cmd: {' '.join(t.cmd)}\n{peers.log_tail(t)}")
            peers.stop(t)
            continue
        log(f"up   {t.name}: port {t.port}, pid {t.proc.pid}, worker {t.worker_pid()}, "
            f"backlog {load.listen_backlog(t.port)}")
        ready.append(t)
    return ready


def plan(cases, targets, out) -> list:
    """The (case, target) pairs whose answer checks out."""
    pairs = []
    for case in cases:
        for t in targets:
            if t.kind not in case.kinds:
                continue
            problem = check(case, t)
            if problem:
                log(f"FAIL check {case.name} {t.name}: {problem}")
            else:
                pairs.append((case, t))
            emit(out, {"type": "check", "case": case.name, "target": t.name, "ok": not problem,
                       "problem": problem})
    return pairs


# ---------------------------------------------------------------- running

def emit(out, record: dict) -> None:
    if out is not None:
        out.write(json.dumps(record) + "\n")
        out.flush()


def run_one(case: Case, t: peers.Target, args, wrk_prefix, script) -> dict:
    if not case.watch:
        return load.run_wrk(wrk_prefix, t.port, case.path, case.connections, args.duration, script)
    third = args.duration / 3
    with load.Watch(t.port, delay=third, probes=args.probes, spacing=third / args.probes) as watch:
        res = load.run_wrk(wrk_prefix, t.port, case.path, case.connections, args.duration, script)
    res.update(watch.result())
    return res


def measure(pairs, args, wrk_prefix, out) -> list:
    scripts = {c.name: load.post_script(c.post) for c, _ in pairs if c.post}
    runs = []
    try:
        if args.warmup:
            for t in {id(t): t for _, t in pairs}.values():
                load.run_wrk(wrk_prefix, t.port, "/", 50, args.warmup)
        for rnd in range(1, args.rounds + 1):
            for case, t in pairs:
                if not peers.alive(t):
                    log(f"DROP {t.name}: exited (code {t.proc.returncode})\n{peers.log_tail(t)}")
                    continue
                try:
                    res = run_one(case, t, args, wrk_prefix, scripts.get(case.name))
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                    log(f"round {rnd} {case.name} {t.name}: wrk failed: {exc}")
                    continue
                res.update(type="run", round=rnd, case=case.name, target=t.name, server=t.server,
                           kind=t.kind, connections=case.connections, duration=args.duration,
                           time=time.time())
                runs.append(res)
                emit(out, res)
                log(f"round {rnd} {case.name:<12} {t.name:<18} {res['rps']:>9.0f} req/s  "
                    f"p50 {fmt(res['p50_ms'], '.2f')} ms  p99 {fmt(res['p99_ms'], '.2f')} ms  "
                    f"errors {load.n_errors(res)}{'  ' + watch_note(res) if case.watch else ''}")
    finally:
        for path in scripts.values():
            os.unlink(path)
    return runs


def measure_memory(targets, args, out) -> dict:
    """RSS growth per idle keep-alive connection, on fresh workers (before any load: a heap
    already grown by the c=1000 runs would hide the cost)."""
    memory = {}
    for t in targets:
        if not peers.alive(t):
            continue
        pid = t.worker_pid()
        try:
            res = load.idle_rss(t.port, lambda: peers.rss_kib(pid), args.idle_connections)
        except OSError as exc:
            log(f"idle-rss {t.name}: {exc}")
            continue
        res.update(type="idle_rss", target=t.name, worker_pid=pid)
        memory[t.name] = res
        emit(out, res)
        log(f"idle-rss {t.name:<18} {fmt(res['rss_per_conn_kib'], '.1f')} KiB/connection "
            f"({res['kept_open']} kept open, {res['rss_before_kib']} -> {res['rss_after_kib']} KiB) {res['error']}")
    return memory


# ---------------------------------------------------------------- report

def fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Results:
    def __init__(self, runs, pairs):
        self.runs = runs
        self.pairs = pairs
        self.by = {}
        for r in runs:
            self.by.setdefault((r["case"], r["target"]), []).append(r)

    def row(self, case: str, target: str) -> list:
        return self.by.get((case, target), [])

    def reference(self, case: Case, kind: str, server: str):
        """``(case name, target name, same case?)`` of ``server``'s run to compare with."""
        candidates = [(c, t) for c, t in self.pairs if t.server == server and self.row(c.name, t.name)]
        same = [(c, t) for c, t in candidates if c.name == case.name]
        group = [(c, t) for c, t in candidates if case.group and c.group == case.group]
        for pool, same_case in ((same, True), (group, False)):
            if pool:
                c, t = next(((c, t) for c, t in pool if t.kind == kind), pool[0])
                return c.name, t.name, same_case
        return None

    def ratio(self, case: Case, target: peers.Target, server: str):
        """Median over rounds of rps(target) / rps(server's reference), with the 'same case' flag."""
        ref = self.reference(case, target.kind, server)
        if ref is None:
            return None, True
        mine = {r["round"]: r["rps"] for r in self.row(case.name, target.name)}
        theirs = {r["round"]: r["rps"] for r in self.row(ref[0], ref[1])}
        ratios = [mine[k] / theirs[k] for k in mine if theirs.get(k)]
        return median_or_none(ratios), ref[2]

    def median(self, case: str, target: str, key: str):
        return median_or_none(r.get(key) for r in self.row(case, target))


def watch_note(res: dict) -> str:
    return (f"probes {res['probes_answered']}/{res['probes']} max {fmt(res['probe_max_ms'], '.0f')} ms, "
            f"acceptq max {fmt(res['accept_queue_max'], 'd')} last {fmt(res['accept_queue_last'], 'd')}")


def print_table(results: Results, cases, targets, memory) -> None:
    print()
    refs = "".join(f"{'vs ' + r:>12}" for r in REFERENCES)
    print(f"{'case':<13}{'target':<19}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{refs}  notes")
    for case in cases:
        for t in targets:
            if t.kind not in case.kinds:
                continue
            rows = results.row(case.name, t.name)
            if not rows:
                why = t.skip or ("no run" if (case, t) in results.pairs else "check failed")
                print(f"{case.name:<13}{t.name:<19}{'n/a':>9}  ({why})")
                continue
            cols = ""
            for ref in REFERENCES:
                ratio, same = results.ratio(case, t, ref)
                cols += f"{fmt(ratio, '.2f') + ('x' if same else 'x*') if ratio else 'n/a':>12}"
            notes = ""
            if case.watch:
                last = rows[-1]
                notes = watch_note(last) if len(rows) == 1 else watch_note(worst_watch(rows))
            print(f"{case.name:<13}{t.name:<19}{statistics.median(r['rps'] for r in rows):>9.0f}"
                  f"{fmt(results.median(case.name, t.name, 'p50_ms'), '.2f'):>9}"
                  f"{fmt(results.median(case.name, t.name, 'p99_ms'), '.2f'):>9}"
                  f"{sum(load.n_errors(r) for r in rows):>8}{cols}  {notes}")
    for name, m in memory.items():
        print(f"{'idle-rss':<13}{name:<19}{'':>71}  {fmt(m['rss_per_conn_kib'], '.1f')} KiB per idle "
              f"keep-alive connection ({m['kept_open']} of {m['connections']} kept open)")
    print("req/s: median over rounds; p50/p99: median over rounds of wrk's percentiles; errors: wrk socket\n"
          "errors + non-2xx, summed. vs X: median over rounds of the paired req/s ratio to server X in the\n"
          "same case; x* = X runs this request as another app kind (e.g. WSGI hello vs uvicorn's ASGI hello).\n"
          "c=1000 notes: probes answered / sent and the slowest, accept queue max and over the last 0.5 s\n"
          "(worst round).")


def worst_watch(rows: list) -> dict:
    return max(rows, key=lambda r: (r["probes"] - r["probes_answered"], r["probe_max_ms"] or 0,
                                    r["accept_queue_last"] or 0))


def target_checks(results: Results, by_name: dict, memory: dict) -> list:
    """The issue's targets: ``(what, value text, passed or None when not measured)``."""
    checks = []

    def ratio(case_name, target_name, server, goal, what):
        case = next(c for c in CASES if c.name == case_name)
        t = by_name.get(target_name)
        value = results.ratio(case, t, server)[0] if t is not None and results.row(case_name, target_name) else None
        checks.append((what, fmt(value, ".2f") + "x" if value else "n/a",
                       None if value is None else value >= goal))

    ratio("hello", "asyncworker", "gthread", 4.0, "WSGI hello c=50 >= 4x gthread")
    ratio("chunked", "asyncworker", "gthread", 2.5, "chunked stream >= 2.5x gthread")
    ratio("echo-1MiB", "asyncworker", "gthread", 2.0, "1 MiB POST echo >= 2x gthread")
    ratio("asgi-hello", "asyncworker-asgi", "uvicorn", 1.2, "ASGI hello >= 1.2x uvicorn worker")
    ratio("asgi-hello", "asyncworker-asgi", "gunicorn-asgi", 1.5, "ASGI hello >= 1.5x gunicorn asgi worker")
    ratio("native-hello", "asyncworker-native", "aiohttp", 1.5, "native hello >= 1.5x aiohttp web")
    rows = results.row("hello-c1000", "asyncworker")
    if rows:
        worst = worst_watch(rows)
        errors = sum(load.n_errors(r) for r in rows)
        ok = (errors == 0 and worst["probes_answered"] == worst["probes"]
              and (worst["probe_max_ms"] or 0) <= 100 and not worst["accept_queue_last"])
        checks.append(("c=1000: no errors, probes <= 100 ms, accept queue drained",
                       f"{errors} errors, {watch_note(worst)}", ok))
    else:
        checks.append(("c=1000: no errors, probes <= 100 ms, accept queue drained", "n/a", None))
    mine = [results.median("hello-c1", "asyncworker", k) for k in ("p50_ms", "p99_ms")]
    theirs = [results.median("hello-c1", "uvicorn", k) for k in ("p50_ms", "p99_ms")]
    if None in mine or None in theirs:
        checks.append(("latency c=1 no worse than uvicorn worker", "n/a", None))
    else:
        checks.append(("latency c=1 no worse than uvicorn worker",
                       f"p50 {mine[0]:.3f} vs {theirs[0]:.3f} ms, p99 {mine[1]:.3f} vs {theirs[1]:.3f} ms",
                       mine[0] <= theirs[0] and mine[1] <= theirs[1]))
    per_conn = memory.get("asyncworker", {}).get("rss_per_conn_kib")
    checks.append(("RSS per idle keep-alive connection < 16 KiB", fmt(per_conn, ".1f") + " KiB"
                   if per_conn is not None else "n/a", None if per_conn is None else per_conn < 16))
    return checks


def print_checks(checks) -> None:
    print()
    print("targets (ratios in this run):")
    for what, value, passed in checks:
        verdict = "n/a " if passed is None else ("PASS" if passed else "MISS")
        print(f"  {verdict}  {what:<58} {value}")


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (whole seconds: wrk takes no fractions; default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded seconds of load per target first (0: off)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 round of 1 s, no warm-up, fewer probes and idle connections")
    p.add_argument("--cases", default=",".join(CASE_NAMES), help="comma-separated subset of the cases")
    p.add_argument("--targets", default=",".join(peers.TARGET_NAMES), help="comma-separated subset of the targets")
    p.add_argument("--probes", type=int, default=10, help="probe connections per c=1000 run (default 10)")
    p.add_argument("--idle-connections", type=int, default=1000,
                   help="idle keep-alive connections for the RSS measure (default 1000; 0: skip)")
    p.add_argument("--json", metavar="FILE", help="append the raw results as JSON lines")
    p.add_argument("--apps-dir", default=peers.APPS_DIR, help="where the benchmark apps are")
    p.add_argument("--peers-python", help="interpreter that has the peers (default: this one, or the peers venv)")
    p.add_argument("--no-install", action="store_true", help="never create or fill the peers venv")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.warmup, args.probes = 1, 1, 0, 5
        args.idle_connections = min(args.idle_connections, 200)
    args.cases = _subset(p, args.cases, CASE_NAMES, "case")
    args.targets = _subset(p, args.targets, peers.TARGET_NAMES, "target")
    if args.duration <= 0 or args.rounds < 1 or args.probes < 1:
        p.error("--duration, --rounds and --probes must be positive")
    return args


def _subset(parser, text: str, known, what: str) -> list:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = set(names) - set(known)
    if unknown:
        parser.error(f"unknown {what}(s): {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    return names


def main(argv=None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk not found on PATH (Debian/Ubuntu: apt-get install wrk)")
    server_prefix, wrk_prefix, load_cores = peers.pinning()
    if load_cores:
        os.sched_setaffinity(0, load_cores)  # probes and checks run with wrk, not with the servers
    peers_python = peers.find_peers_python(args.peers_python, install=not args.no_install)
    cases = [c for c in CASES if c.name in args.cases]
    log(f"{args.rounds} round(s) x {args.duration:g} s; pinning: servers {' '.join(server_prefix) or 'none'}, "
        f"load {' '.join(wrk_prefix) or 'none'}; peers from {peers_python}")
    targets = peers.make_targets(args.targets, peers_python, args.apps_dir)
    out = None
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        out = open(args.json, "a")
    try:
        emit(out, {"type": "meta", "time": time.time(), "duration": args.duration, "rounds": args.rounds,
                   "threads": peers.THREADS, "keep_alive": peers.KEEP_ALIVE, "backlog": peers.BACKLOG,
                   "targets": {t.name: t.skip or " ".join(t.command(args.apps_dir)) for t in targets}})
        ready = boot(targets, args.apps_dir, server_prefix)
        if not ready:
            sys.exit("no target could be started")
        pairs = plan(cases, ready, out)
        memory = measure_memory(ready, args, out) if args.idle_connections else {}
        runs = measure(pairs, args, wrk_prefix, out)
        results = Results(runs, pairs)
        print_table(results, cases, targets, memory)
        print_checks(target_checks(results, {t.name: t for t in targets}, memory))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for t in targets:
            peers.stop(t)
        if out is not None:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
