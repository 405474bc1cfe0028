"""Shared fixtures. Tests import the harness as `helpers` (pytest puts tests/ on sys.path);
tests/apps is put on sys.path too, so tests can import the apps' constants."""

import sys

import pytest

from helpers import APPS_DIR

sys.path.insert(0, str(APPS_DIR))

CORPUS_OUTCOMES = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def corpus_outcomes(request) -> dict:
    """case name -> outcome that matched ("expect", "alt:<kind>" or "none"); summarised at the end."""
    return request.config.stash.setdefault(CORPUS_OUTCOMES, {})


def pytest_terminal_summary(terminalreporter, config):
    outcomes = config.stash.get(CORPUS_OUTCOMES, {})
    if not outcomes:
        return
    write = terminalreporter.write_line
    terminalreporter.section("HTTP corpus outcomes")
    for kind in sorted(set(outcomes.values())):
        names = sorted(n for n, o in outcomes.items() if o == kind)
        write(f"{kind}: {len(names)}")
        if kind != "expect":
            write("    " + " ".join(names))
