"""Run the hardening fault scenarios against several gunicorn worker classes and print one
table of what each measured (scenario, figure, bound, one column per worker).

    python tests/hardening/compare_workers.py                      # AsyncWorker and gthread
    python tests/hardening/compare_workers.py --workers gthread sync -- -k slowloris
    HARDENING_LONG=1 python tests/hardening/compare_workers.py     # the full sizes

Each worker gets its own pytest run of tests/hardening/test_faults_*.py (test_faults_slow_readers.py
included: eight slow readers of 16 MiB with --threads 2 and a fresh client's /ping p99) with ``TEST_WORKER``
set (tests/helpers.py starts gunicorn with ``-k $TEST_WORKER``). Scenarios that only apply
to AsyncWorker are skipped for the others; a bound a worker misses is a failed test there,
and its figure is still in the table (each test records before it asserts).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_WORKERS = ["server.workers.AsyncWorker", "gthread"]


def label(worker: str) -> str:
    return "asyncworker" if worker == "server.workers.AsyncWorker" else worker


def run_worker(worker: str, pytest_args: list[str], figures: Path) -> int:
    env = {**os.environ, "TEST_WORKER": worker, "HARDENING_FIGURES": str(figures)}
    tests = sorted(str(p.relative_to(ROOT)) for p in HERE.glob("test_faults_*.py"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *pytest_args]
    print(f"== {label(worker)}: {' '.join(cmd[1:])}", flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def cell(row: dict | None) -> str:
    if row is None:
        return "-"
    value = row["value"]
    if isinstance(value, float):
        text = "inf" if value == float("inf") else (f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}")
    else:
        text = str(value)
    return f"{text} {row['unit']}".strip()


def table(rows: list[dict], workers: list[str]) -> str:
    keys, bounds, found = [], {}, {}
    for row in rows:
        key = (row["scenario"], row["figure"])
        if key not in bounds:
            keys.append(key)
            bounds[key] = row["bound"]
        found[(key, row["worker"])] = row
    names = [label(w) for w in workers]
    lines = ["| scenario | figure | bound | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for key in keys:
        cells = [cell(found.get((key, name))) for name in names]
        lines.append(f"| {key[0]} | {key[1]} | {bounds[key] or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", nargs="+", default=DEFAULT_WORKERS, help="gunicorn -k values")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.jsonl"
        figures.touch()
        codes = {label(w): run_worker(w, args.pytest_args, figures) for w in args.workers}
        rows = [json.loads(line) for line in figures.read_text().splitlines()]
    print()
    print(table(rows, args.workers))
    print()
    print("pytest exit codes: " + ", ".join(f"{name} {code}" for name, code in codes.items()))
    return codes.get(label(args.workers[0]), 0)


if __name__ == "__main__":
    sys.exit(main())
