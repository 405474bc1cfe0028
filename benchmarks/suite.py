#!/usr/bin/env python
"""The benchmark suite: this worker against its peers, case by case, in the same run.

    python benchmarks/suite.py [--quick] [--duration 5] [--rounds 7] [--cases ...]
                               [--targets ...] [--json FILE] [--peers-python PY] [--instructions]

Every target (a server serving one kind of app, see peers.py) is started, its
answer to every case (cases.py) is checked once, and the RSS growth per idle
keep-alive connection is measured on the fresh workers. Then case by case, every
target of the case is started again, warmed up, and the case's rounds run
interleaved: for each round, each target, one pinned ``wrk -t1`` run. A fresh
start per case keeps what one case leaves in a server (granian's WSGI blocking
threads, grown to hundreds at c=1000, halve its c=50 throughput until they
retire) out of another case's figures. At c=1000 fresh probe connections and the
accept queue are watched during the run. One table goes to stdout (medians, paired
ratios against granian and the best pure-Python peer of each row's kind, see
report.py), then the issue's targets with PASS/MISS; progress and skips to
stderr; raw results as JSON lines with --json. See benchmarks/README.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import load
import peers
import report
from cases import CASE_NAMES, CASES, FILE_ENV, PATH_HEADER, Case, make_file

BOOT_DEADLINE = 30.0  # seconds for all targets to listen
log = peers.log


# ---------------------------------------------------------------- checks

def check(case: Case, target: peers.Target) -> tuple[str, str]:
    """One request of ``case`` to ``target``: ``(what is wrong or "", note)``; the note says how
    the file of ``/file`` went out (the app's X-Bench-Path)."""
    method, path, headers, body = case.request()
    try:
        r = load.fetch(target.port, path, method, body, headers=headers)
    except (OSError, ValueError) as exc:
        return f"no answer to {method} {path}: {type(exc).__name__}: {exc}", ""
    problem = case.verify(target.kind, r.status, r.headers, r.body)
    if problem:
        problem = f"{method} {path}: {problem} (headers {r.headers})"
    return problem, r.headers.get(PATH_HEADER, "")


def boot(targets, apps_dir: str, prefix: list[str], extra_env: dict | None = None) -> list:
    """Start every runnable target; return those that listen."""
    for t in targets:
        if t.skip:
            log(f"n/a  {t.name}: {t.skip}")
            continue
        peers.start(t, apps_dir, prefix, extra_env)
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


def plan(cases, targets, out, notes: dict) -> list:
    """The (case, target) pairs whose answer checks out; ``notes`` gets the check's note, or
    why it failed."""
    pairs = []
    for case in cases:
        for t in targets:
            if t.kind not in case.kinds:
                continue
            problem, note = check(case, t)
            if problem:
                method, path, headers, body = case.request()
                head = load.request_bytes(path, method, body, close=True, headers=headers)[:-len(body) or None]
                log(f"FAIL check {case.name} {t.name}: {problem}\n  request ({len(body)} bytes of body):\n"
                    + head.decode("latin-1").replace("\r\n", "\n    ").rstrip())
                notes[(case.name, t.name)] = "check failed: " + problem[:120]
            else:
                pairs.append((case, t))
                if note:
                    notes[(case.name, t.name)] = note
            emit(out, {"type": "check", "case": case.name, "target": t.name, "ok": not problem,
                       "problem": problem, "note": note})
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


def restarter(apps_dir: str, prefix: list[str], extra_env: dict):
    """``restart(targets)``: stop them, start them again, return those that listen."""
    def restart(targets) -> list:
        for t in targets:
            peers.stop(t)
        return boot(targets, apps_dir, prefix, extra_env)
    return restart


def measure(pairs, args, wrk_prefix, out, restart) -> list:
    """The rounds, case by case; ``restart(targets)`` starts the case's targets afresh before
    its warm-up and returns those that listen."""
    scripts = {c.name: load.write_script(c.script()) for c, _ in pairs if c.needs_script()}
    runs = []
    try:
        for case, case_targets in by_case(pairs):
            case_targets = restart(case_targets)
            if args.warmup:  # (the case's own load, not counted)
                for t in case_targets:
                    load.run_wrk(wrk_prefix, t.port, case.path, case.connections, args.warmup,
                                 scripts.get(case.name))
            for rnd in range(1, args.rounds + 1):
                for t in case_targets:
                    res = run_round(case, t, rnd, args, wrk_prefix, scripts.get(case.name))
                    if res is not None:
                        runs.append(res)
                        emit(out, res)
    finally:
        for path in scripts.values():
            os.unlink(path)
    return runs


def by_case(pairs) -> list:
    """``[(case, [target, ...]), ...]`` in the order of ``pairs``."""
    grouped: dict = {}
    for case, t in pairs:
        grouped.setdefault(case.name, (case, []))[1].append(t)
    return list(grouped.values())


def run_round(case: Case, t: peers.Target, rnd: int, args, wrk_prefix, script) -> dict | None:
    """One wrk run of ``case`` on ``t``, logged; None if the target is gone or wrk failed."""
    if not peers.alive(t):
        log(f"DROP {t.name}: exited (code {t.proc.returncode})\n{peers.log_tail(t)}")
        return None
    try:
        res = run_one(case, t, args, wrk_prefix, script)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        log(f"round {rnd} {case.name} {t.name}: wrk failed: {exc}")
        return None
    res.update(type="run", round=rnd, case=case.name, target=t.name, server=t.server,
               kind=t.kind, connections=case.connections, duration=args.duration,
               time=time.time())
    log(f"round {rnd} {case.name:<13} {t.name:<18} {res['rps']:>9.0f} req/s  "
        f"p50 {fmt(res['p50_ms'], '.2f')} ms  p99 {fmt(res['p99_ms'], '.2f')} ms  "
        f"errors {load.n_errors(res)}{'  ' + report.watch_note(res) if case.watch else ''}")
    return res


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


fmt = report.fmt


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (whole seconds: wrk takes no fractions; default 5)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
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
    p.add_argument("--check-only", action="store_true",
                   help="start the targets, check every case's answer once, print the checks and stop (no load)")
    p.add_argument("--instructions", action="store_true",
                   help="also count instructions per request (benchmarks/instructions.py, valgrind) for the "
                        "GET cases it can send and the targets it drives; a column of the table")
    p.add_argument("--instructions-requests", default="2000,6000", metavar="LOW,HIGH",
                   help="the two request counts of each instruction count (default 2000,6000)")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.warmup, args.probes = 1, 1, 0, 5
        args.idle_connections = min(args.idle_connections, 200)
    args.cases = _subset(p, args.cases, CASE_NAMES, "case")
    args.targets = _subset(p, args.targets, peers.TARGET_NAMES, "target")
    if args.duration <= 0 or args.rounds < 1 or args.probes < 1:
        p.error("--duration, --rounds and --probes must be positive")
    try:
        low, high = (int(n) for n in args.instructions_requests.split(","))
    except ValueError:
        p.error("--instructions-requests takes two numbers, LOW,HIGH")
    if not 0 < low < high:
        p.error("--instructions-requests: 0 < LOW < HIGH")
    args.instructions_requests = (low, high)
    return args


def _subset(parser, text: str, known, what: str) -> list:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = set(names) - set(known)
    if unknown:
        parser.error(f"unknown {what}(s): {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    return names


def count_instructions(pairs, args, peers_python: str, out) -> dict:
    """(case, target) -> instructions per request, for the counted cases of the targets
    instructions.py drives (each count runs valgrind twice)."""
    import instructions

    if shutil.which("valgrind") is None:
        log("--instructions: valgrind is not installed (apt-get install valgrind): no column")
        return {}
    counts = {}
    low, high = args.instructions_requests
    for case, t in pairs:
        counted = instructions.SUITE_TARGETS.get(t.name)
        if not case.counted or counted is None:
            continue
        python = sys.executable if counted in instructions.OURS else peers_python
        try:
            n = instructions.per_request(python, counted, low, high, case.name)
        except (RuntimeError, SystemExit, subprocess.TimeoutExpired) as exc:
            log(f"instructions {case.name} {t.name}: {exc}")
            continue
        counts[(case.name, t.name)] = n
        emit(out, {"type": "instructions", "case": case.name, "target": t.name, "per_request": n,
                   "requests": [low, high]})
        log(f"instructions {case.name:<13} {t.name:<18} {n:>9.0f} per request")
    return counts


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
    file_path = make_file()  # served by /file; removed at the end
    out = None
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        out = open(args.json, "a")
    try:
        emit(out, {"type": "meta", "time": time.time(), "duration": args.duration, "rounds": args.rounds,
                   "threads": peers.THREADS, "keep_alive": peers.KEEP_ALIVE, "backlog": peers.BACKLOG,
                   "targets": {t.name: t.skip or " ".join(t.command(args.apps_dir)) for t in targets}})
        ready = boot(targets, args.apps_dir, server_prefix, {FILE_ENV: file_path})
        if not ready:
            sys.exit("no target could be started")
        notes = {}
        pairs = plan(cases, ready, out, notes)
        if args.check_only:
            for case, t in pairs:
                print(f"ok    {case.name:<14}{t.name:<19}{notes.get((case.name, t.name), '')}")
            for (case_name, name), note in notes.items():
                if note.startswith("check failed"):
                    print(f"FAIL  {case_name:<14}{name:<19}{note}")
            return 0 if all(not n.startswith("check failed") for n in notes.values()) else 1
        memory = measure_memory(ready, args, out) if args.idle_connections else {}
        restart = restarter(args.apps_dir, server_prefix, {FILE_ENV: file_path})
        runs = measure(pairs, args, wrk_prefix, out, restart)
        counts = count_instructions(pairs, args, peers_python, out) if args.instructions else None
        results = report.Results(runs, {t.name: t.kind for t in targets})
        print()
        print("\n".join(report.table(results, cases, [(t.name, t.kind, t.skip) for t in targets],
                                     memory, notes, counts)))
        print(report.LEGEND)
        print()
        print("\n".join(report.goal_lines(report.goals(results, memory, cases))))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for t in targets:
            peers.stop(t)
        if out is not None:
            out.close()
        shutil.rmtree(os.path.dirname(file_path), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
