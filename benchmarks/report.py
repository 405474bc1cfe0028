"""The suite's figures from its runs: medians, paired ratios, the table and the issue's targets.

    runs (one dict per wrk run) ──Results──► median req/s, p50, p99 per (case, target)
                                           ratio(case, row, reference): median over rounds of
                                             the paired req/s ratio
                                ──table()──► one line per (case, target)
                                ──goals()──► the issue's targets, PASS / MISS / n/a

Pure: no sockets, no processes (tests/benchmarks/test_bench_tools.py feeds it runs).
Each row is compared with granian serving the same kind of app (``granian`` for WSGI,
``granian-asgi`` for ASGI; a native row, which granian does not serve, with
``granian-asgi``, marked ``*``) and with the best pure-Python peer of its kind (the one
the row's ratio is lowest against).
"""

import statistics

import load
from cases import BY_NAME, CASES

GRANIAN = {"wsgi": "granian", "asgi": "granian-asgi", "native": "granian-asgi"}
PURE_PYTHON = {"wsgi": ("gthread", "sync", "waitress"),
               "asgi": ("uvicorn", "gunicorn-asgi", "hypercorn"),
               "native": ("aiohttp",)}
OURS = {"wsgi": "asyncworker", "asgi": "asyncworker-asgi", "native": "asyncworker-native"}
KIND_LABEL = {"wsgi": "WSGI", "asgi": "ASGI", "native": "native"}


def fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Results:
    """``runs``: dicts with ``case, target, round, rps`` (and p50_ms, p99_ms, errors...);
    ``kinds``: target name -> app kind."""

    def __init__(self, runs, kinds: dict):
        self.runs = runs
        self.kinds = kinds
        self.by = {}
        for r in runs:
            self.by.setdefault((r["case"], r["target"]), []).append(r)

    def row(self, case: str, target: str) -> list:
        return self.by.get((case, target), [])

    def median(self, case: str, target: str, key: str):
        return median_or_none(r.get(key) for r in self.row(case, target))

    def reference_runs(self, case_name: str, ref: str):
        """``(runs, same case?)`` of ``ref`` for ``case_name``: in that case, else in another case
        of its group (the same request and load, another app kind), else ``([], True)``."""
        if self.row(case_name, ref):
            return self.row(case_name, ref), True
        group = BY_NAME[case_name].group if case_name in BY_NAME else ""
        for other in CASES:
            if group and other.group == group and other.name != case_name and self.row(other.name, ref):
                return self.row(other.name, ref), False
        return [], True

    def ratio(self, case_name: str, target: str, ref: str):
        """``(median over rounds of rps(target) / rps(ref), comparable?)``; comparable is False
        when ``ref`` serves another kind of app or answered this request in another case."""
        theirs_runs, same_case = self.reference_runs(case_name, ref)
        mine = {r["round"]: r["rps"] for r in self.row(case_name, target)}
        theirs = {r["round"]: r["rps"] for r in theirs_runs}
        value = median_or_none([mine[k] / theirs[k] for k in mine if theirs.get(k)])
        same_kind = self.kinds.get(ref) == self.kinds.get(target)
        return value, same_case and same_kind

    def vs_granian(self, case_name: str, target: str):
        return self.ratio(case_name, target, GRANIAN[self.kinds[target]])

    def vs_pure_python(self, case_name: str, target: str):
        """``(lowest ratio, that peer, comparable?)`` over the pure-Python peers of the row's kind
        (the row itself left out); ``(None, "", True)`` when none ran."""
        found = []
        for peer in PURE_PYTHON[self.kinds[target]]:
            if peer == target:
                continue
            value, same = self.ratio(case_name, target, peer)
            if value is not None:
                found.append((value, peer, same))
        return min(found) if found else (None, "", True)


def ratio_text(value, same: bool, peer: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}x{'' if same else '*'}{' ' + peer if peer else ''}"


def watch_note(res: dict) -> str:
    return (f"probes {res['probes_answered']}/{res['probes']} max {fmt(res['probe_max_ms'], '.0f')} ms, "
            f"acceptq max {fmt(res['accept_queue_max'], 'd')} last {fmt(res['accept_queue_last'], 'd')}")


def worst_watch(rows: list) -> dict:
    return max(rows, key=lambda r: (r["probes"] - r["probes_answered"], r["probe_max_ms"] or 0,
                                    r["accept_queue_last"] or 0))


def table(results: Results, cases, targets, memory: dict, notes: dict, instructions: dict | None) -> list[str]:
    """The table's lines. ``targets``: (name, kind, why it did not run) in order; ``notes``:
    (case, target) -> text (e.g. how /file went out, or why a check failed)."""
    counted = instructions is not None
    instr_head = f"{'instr/req':>10}" if counted else ""
    head = (f"{'case':<14}{'target':<19}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
            f"{instr_head}{'vs granian':>12}  {'vs best pure-Python':<25} notes")
    lines = [head]
    for case in cases:
        for name, kind, skip in targets:
            if kind not in case.kinds:
                continue
            rows = results.row(case.name, name)
            note = notes.get((case.name, name), "")
            if not rows:
                lines.append(f"{case.name:<14}{name:<19}{'n/a':>9}  ({skip or note or 'no run'})")
                continue
            granian = ratio_text(*results.vs_granian(case.name, name))
            value, peer, same = results.vs_pure_python(case.name, name)
            if case.watch:
                note = watch_note(rows[0] if len(rows) == 1 else worst_watch(rows))
            instr = ""
            if counted:
                n = instructions.get((case.name, name))
                instr = f"{fmt(n, '.0f'):>10}"
            lines.append(f"{case.name:<14}{name:<19}{statistics.median(r['rps'] for r in rows):>9.0f}"
                         f"{fmt(results.median(case.name, name, 'p50_ms'), '.2f'):>9}"
                         f"{fmt(results.median(case.name, name, 'p99_ms'), '.2f'):>9}"
                         f"{sum(load.n_errors(r) for r in rows):>8}{instr}{granian:>12}  "
                         f"{ratio_text(value, same, peer):<25} {note}".rstrip())
    for name, m in memory.items():
        lines.append(f"{'idle-rss':<14}{name:<19}  {fmt(m['rss_per_conn_kib'], '.1f')} KiB per idle "
                     f"keep-alive connection ({m['kept_open']} of {m['connections']} kept open)")
    return lines


LEGEND = """\
req/s: median over rounds; p50/p99: median over rounds of wrk's percentiles; errors: wrk socket
errors + non-2xx, summed; instr/req (--instructions): instructions per request, counted by
benchmarks/instructions.py. vs granian: median over rounds of the paired req/s ratio to granian
serving the same kind of app (WSGI: granian, ASGI: granian-asgi). vs best pure-Python: the lowest
such ratio over the pure-Python peers of the row's kind (WSGI: gthread, sync, waitress; ASGI:
uvicorn, gunicorn-asgi, hypercorn; native: aiohttp), and which peer it is. x* = the reference
serves another kind of app (native rows vs granian-asgi) or ran this request in another case of
its group (hello, asgi-hello, native-hello). c=1000 notes: probes answered / sent and the slowest,
accept queue max and over the last 0.5 s (worst round). file-10MiB notes: how the app sent the
file (X-Bench-Path)."""


def goals(results: Results, memory: dict, cases=CASES) -> list:
    """The issue's targets: ``(what, value text, passed or None when not measured)``."""
    checks = []

    def ratio(case_name, target, ref, goal, what):
        value = results.ratio(case_name, target, ref)[0] if results.row(case_name, target) else None
        checks.append((what, ratio_text(value, True, digits=3), None if value is None else value >= goal))

    ratio("hello", "asyncworker", "gthread", 4.0, "WSGI hello c=50 >= 4x gthread")
    ratio("chunked", "asyncworker", "gthread", 2.5, "WSGI chunked stream >= 2.5x gthread")
    ratio("echo-1MiB-c10", "asyncworker", "gthread", 2.0, "WSGI 1 MiB POST echo c=10 >= 2x gthread")
    ratio("asgi-hello", "asyncworker-asgi", "uvicorn", 1.3, "ASGI hello >= 1.3x uvicorn worker")
    ratio("asgi-hello", "asyncworker-asgi", "gunicorn-asgi", 1.5, "ASGI hello >= 1.5x gunicorn asgi worker")
    ratio("native-hello", "asyncworker-native", "aiohttp", 1.5, "native hello >= 1.5x aiohttp web")
    checks += every_case_goals(results, cases)
    checks.append(c1000_goal(results))
    checks.append(latency_goal(results))
    per_conn = memory.get("asyncworker", {}).get("rss_per_conn_kib")
    checks.append(("RSS per idle keep-alive connection < 16 KiB", fmt(per_conn, ".1f") + " KiB"
                   if per_conn is not None else "n/a", None if per_conn is None else per_conn < 16))
    return checks


def every_case_goals(results: Results, cases) -> list:
    """Per case and kind: >= 1.0x granian of the kind where granian serves it, and above every
    pure-Python peer of the kind."""
    checks = []
    for case in cases:
        for kind in case.kinds:
            ours = OURS[kind]
            label = f"{case.name} {KIND_LABEL[kind]}"
            if not results.row(case.name, ours):
                checks.append((f"{label}: this worker measured", "n/a", None))
                continue
            if kind != "native":
                value, same = results.vs_granian(case.name, ours)
                checks.append((f"{label} >= 1.0x {GRANIAN[kind]}", ratio_text(value, same, digits=3),
                               None if value is None else value >= 1.0))
            value, peer, same = results.vs_pure_python(case.name, ours)
            checks.append((f"{label} > every pure-Python peer", ratio_text(value, same, peer, digits=3),
                           None if value is None else value > 1.0))
    return checks


def c1000_goal(results: Results):
    what = "c=1000: no errors, probes <= 100 ms, accept queue drained"
    rows = results.row("hello-c1000", "asyncworker")
    if not rows:
        return what, "n/a", None
    worst = worst_watch(rows)
    errors = sum(load.n_errors(r) for r in rows)
    ok = (errors == 0 and worst["probes_answered"] == worst["probes"]
          and (worst["probe_max_ms"] or 0) <= 100 and not worst["accept_queue_last"])
    return what, f"{errors} errors, {watch_note(worst)}", ok


def latency_goal(results: Results):
    what = "latency c=1 no worse than uvicorn worker"
    mine = [results.median("hello-c1", "asyncworker", k) for k in ("p50_ms", "p99_ms")]
    theirs = [results.median("hello-c1", "uvicorn", k) for k in ("p50_ms", "p99_ms")]
    if None in mine or None in theirs:
        return what, "n/a", None
    return (what, f"p50 {mine[0]:.3f} vs {theirs[0]:.3f} ms, p99 {mine[1]:.3f} vs {theirs[1]:.3f} ms",
            mine[0] <= theirs[0] and mine[1] <= theirs[1])


def goal_lines(checks) -> list[str]:
    lines = ["targets (ratios in this run; a peer named is the pure-Python peer the ratio is lowest "
             "against):"]
    for what, value, passed in checks:
        verdict = "n/a " if passed is None else ("PASS" if passed else "MISS")
        lines.append(f"  {verdict}  {what:<58} {value}")
    return lines
