#!/usr/bin/env python
"""System calls and bytes through them per request, for one case and one target.

    python benchmarks/syscalls.py --case file-10MiB --target asyncworker
    python benchmarks/syscalls.py --case echo-1MiB-c10 --target granian --peers-python PY

Starts the target alone (pinned as in the suite), checks its answer to the case, loads it
for a second unrecorded, then attaches ``strace -C -f -p <worker pid>`` (``-c``'s count
table plus the calls themselves, for every thread of the worker) for one bounded ``wrk``
run of the case and prints per request: the system calls (total, and the top 5 by count)
and the bytes they moved: copied in (read, recv... of sockets and files), copied out
(write, send...), and sent without a copy through user space (sendfile, splice). strace
slows the worker several times over, so its req/s means nothing here; the counts per
request are what it is for. Requests in flight when the run starts or ends add to the
counts: use runs long enough for many requests (big responses: ``--duration 5`` or more).

Needs ``strace`` (``apt-get install strace``) and the right to trace the worker (the
same user, and ``kernel.yama.ptrace_scope`` 0 or root).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import load
import peers
import suite
from cases import BY_NAME, CASE_NAMES, FILE_ENV, make_file

ATTACH_TIMEOUT = 10.0  # seconds for strace to attach to every thread
DETACH_TIMEOUT = 30.0
log = peers.log


def parse_strace_summary(text: str) -> dict:
    """``{syscall: (calls, errors)}`` from the table of ``strace -c`` (the 'total' line left out)."""
    calls = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[0].replace(".", "", 1).isdigit() or fields[-1] == "total":
            continue
        numbers = fields[1:-1]  # seconds, usecs/call, calls[, errors]
        if len(numbers) not in (3, 4) or not all(n.isdigit() or "." in n for n in numbers):
            continue
        calls[fields[-1]] = (int(numbers[2]), int(numbers[3]) if len(numbers) == 4 else 0)
    return calls


COPY_IN = {"read", "readv", "pread64", "preadv", "preadv2", "recvfrom", "recvmsg"}
COPY_OUT = {"write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg"}
NO_COPY = {"sendfile", "splice", "copy_file_range"}
_NAME = re.compile(r"^\s*(?:\[pid\s+\d+\]\s*|\d+\s+)?(\w+)\(")
_RESUMED = re.compile(r"<\.\.\. (\w+) resumed>")
_RETURN = re.compile(r"\)\s+=\s+(-?\d+)")


def bytes_moved(text: str) -> dict:
    """Bytes returned by the data-moving calls of a strace trace: ``{"in", "out", "no_copy"}``."""
    moved = {"in": 0, "out": 0, "no_copy": 0}
    for line in text.splitlines():
        m = _RESUMED.search(line) or _NAME.match(line)
        ret = _RETURN.search(line)
        if m is None or ret is None or int(ret.group(1)) <= 0:
            continue  # unfinished (its resumed line has the result), failed, or no data
        name = m.group(1)
        key = "in" if name in COPY_IN else "out" if name in COPY_OUT else "no_copy" if name in NO_COPY else None
        if key:
            moved[key] += int(ret.group(1))
    return moved


def per_request(calls: dict, requests: int, moved: dict, top: int = 5) -> dict:
    """The summary: total calls and errors per request, the ``top`` calls by count, bytes per request."""
    if requests <= 0:
        raise ValueError("no request was answered under strace")
    ranked = sorted(calls.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return {
        "requests": requests,
        "syscalls_per_request": sum(c for c, _ in calls.values()) / requests,
        "errors_per_request": sum(e for _, e in calls.values()) / requests,
        "top": [(name, c / requests) for name, (c, _) in ranked[:top]],
        **{f"bytes_{k}_per_request": v / requests for k, v in moved.items()},
    }


def traced(pid: int) -> bool:
    """Whether every thread of ``pid`` has a tracer."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
        for tid in tids:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                if any(line.startswith("TracerPid:") and line.split()[1] == "0" for line in f):
                    return False
    except OSError:
        return False
    return True


def measure(t: peers.Target, case, duration: int, connections: int, wrk_prefix: list) -> dict:
    script = load.write_script(case.script()) if case.needs_script() else None
    fd, out_path = tempfile.mkstemp(prefix="bench-strace-", suffix=".txt")
    os.close(fd)
    try:
        load.run_wrk(wrk_prefix, t.port, case.path, connections, 1, script)  # warm, unrecorded
        pid = t.worker_pid()
        strace = subprocess.Popen(["strace", "-C", "-f", "-qq", "-s", "0", "-o", out_path, "-p", str(pid)],
                                  stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + ATTACH_TIMEOUT
            while not traced(pid):
                if strace.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"strace did not attach to {pid}: {strace.stderr.read().decode()[-500:]}")
                time.sleep(0.05)
            run = load.run_wrk(wrk_prefix, t.port, case.path, connections, duration, script)
        finally:
            if strace.poll() is None:
                strace.send_signal(signal.SIGINT)  # detach: strace writes its summary
            strace.wait(DETACH_TIMEOUT)
        with open(out_path, errors="replace") as f:
            text = f.read()
        result = per_request(parse_strace_summary(text), run["requests"] or 0, bytes_moved(text))
        result.update(rps_under_strace=run["rps"], errors=load.n_errors(run), worker_pid=pid)
        return result
    finally:
        os.unlink(out_path)
        if script:
            os.unlink(script)


def print_result(case_name: str, target: str, r: dict) -> None:
    print(f"{case_name} on {target} (worker {r['worker_pid']}): {r['requests']} requests under strace, "
          f"{r['errors']} errors")
    print(f"  syscalls per request: {r['syscalls_per_request']:.2f} "
          f"({r['errors_per_request']:.2f} of them failed, e.g. EAGAIN)")
    for name, n in r["top"]:
        print(f"    {name:<20} {n:>9.2f}")
    print(f"  bytes per request: copied in {r['bytes_in_per_request']:,.0f}, copied out "
          f"{r['bytes_out_per_request']:,.0f}, sent without a copy (sendfile, splice) "
          f"{r['bytes_no_copy_per_request']:,.0f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", required=True, choices=CASE_NAMES)
    p.add_argument("--target", required=True, choices=peers.TARGET_NAMES)
    p.add_argument("--duration", type=int, default=3, help="seconds of the traced wrk run (default 3)")
    p.add_argument("--connections", type=int, help="wrk connections (default: the case's)")
    p.add_argument("--apps-dir", default=peers.APPS_DIR)
    p.add_argument("--peers-python")
    p.add_argument("--no-install", action="store_true")
    args = p.parse_args(argv)
    case = BY_NAME[args.case]
    for tool in ("strace", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found on PATH (Debian/Ubuntu: apt-get install {tool})")
    server_prefix, wrk_prefix, load_cores = peers.pinning()
    if load_cores:
        os.sched_setaffinity(0, load_cores)
    is_peer = next(row[4] for row in peers.TARGETS if row[0] == args.target)
    python = peers.find_peers_python(args.peers_python, not args.no_install) if is_peer else sys.executable
    (t,) = peers.make_targets([args.target], python, args.apps_dir)
    if t.kind not in case.kinds:
        sys.exit(f"{args.case} is not run for {t.kind} targets")
    file_path = make_file()
    try:
        if not suite.boot([t], args.apps_dir, server_prefix, {FILE_ENV: file_path}):
            sys.exit(f"{t.name} did not start: {t.skip}")
        problem, note = suite.check(case, t)
        if problem:
            sys.exit(f"{t.name} fails the check of {case.name}: {problem}")
        result = measure(t, case, args.duration, args.connections or case.connections, wrk_prefix)
        print_result(case.name, t.name + (f" ({note})" if note else ""), result)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        sys.exit(f"{case.name} on {t.name}: {exc}")
    finally:
        peers.stop(t)
        shutil.rmtree(os.path.dirname(file_path), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
