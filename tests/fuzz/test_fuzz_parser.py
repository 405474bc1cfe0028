"""Run the atheris harness (fuzz_parser.py) in a subprocess: every corpus file first (the
seeds and every crash ever found), then a bounded fuzzing session. Any finding fails.
Also check that the harness does report a compiled head parser that differs from the
Python one."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS = FUZZ_DIR / "corpus"
LONG = os.environ.get("HARDENING_LONG") == "1"
RUNS = 2_000_000 if LONG else 15_000
SECONDS = 600 if LONG else 25


def test_corpus_is_present():
    names = [p.name for p in CORPUS.iterdir()]
    assert any(n.startswith("seed-") for n in names), names


def test_harness_finds_a_difference_between_the_head_parsers():
    """The harness's comparison of the compiled and Python head parsers can fail: with
    a compiled parser that gets one bit of the mask wrong, a plain head is a finding."""
    code = (
        "import fuzz_parser as f\n"
        "if f.plain_head_c is None: raise SystemExit('not built')\n"
        "f.check(b'\\x00GET / HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n')\n"
        "def wrong(head, *limits):\n"
        "    plain = f.plain_head_py(head, *limits)\n"
        "    return plain and plain[:7] + (plain[7] ^ 1,)\n"
        "f.plain_head_c = wrong\n"
        "try:\n"
        "    f.check(b'\\x00GET / HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n')\n"
        "except f.FuzzFinding as exc:\n"
        "    print('finding:', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=FUZZ_DIR, stdin=subprocess.DEVNULL)
    if "not built" in proc.stderr:
        pytest.skip("the compiled head parser is not in use")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "finding: compiled and Python head parsers differ" in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_bounded_fuzzing_session_finds_nothing(tmp_path):
    cmd = [sys.executable, str(FUZZ_DIR / "fuzz_parser.py"), str(tmp_path), str(CORPUS),
           f"-atheris_runs={RUNS}", f"-max_total_time={SECONDS}", "-max_len=1024", "-timeout=10",
           f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 120,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    crashes = [p.name for p in tmp_path.glob("crash-*")]
    assert proc.returncode == 0 and not crashes, f"{crashes}\n{output[-4000:]}"
    # The run really exercised the parser: it read the corpus and measured coverage.
    inited = re.search(r"INITED cov: (\d+)", output)
    assert inited and int(inited.group(1)) > 100, output[-2000:]
    assert re.search(r"Done \d+ (runs|in)", output), output[-2000:]
