"""Figures measured by the hardening tests: each test records what it measured (and the
bound it asserts) with the ``figure`` fixture, before asserting, so a failing bound is
still reported. The table is printed at the end of the run; with ``HARDENING_FIGURES=<file>``
it is also appended to that file as JSON lines (compare_workers.py reads it)."""

import json
import os

import pytest

from hardening_support import worker_label

FIGURES = pytest.StashKey[list]()


@pytest.fixture
def figure(request):
    figures = request.config.stash.setdefault(FIGURES, [])

    def record(scenario: str, name: str, value, unit: str = "", bound: str = "") -> None:
        row = {"worker": worker_label(), "scenario": scenario, "figure": name,
               "value": value, "unit": unit, "bound": bound, "test": request.node.nodeid}
        figures.append(row)
        path = os.environ.get("HARDENING_FIGURES")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return record


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def pytest_terminal_summary(terminalreporter, config):
    rows = config.stash.get(FIGURES, [])
    if not rows:
        return
    terminalreporter.section(f"hardening figures ({rows[0]['worker']})")
    for row in rows:
        value = f"{format_value(row['value'])} {row['unit']}".strip()
        bound = f"  (bound: {row['bound']})" if row["bound"] else ""
        terminalreporter.write_line(f"{row['scenario']}: {row['figure']} = {value}{bound}")
