"""Run the atheris harnesses of the form, Range and WebSocket frame parsers (fuzz_multipart.py,
fuzz_urlencoded.py, fuzz_range.py, fuzz_frames.py) in a subprocess, as test_fuzz_parser.py
runs the request parser's: the target's corpus (seeds and every crash ever found) first, then a
bounded session. Any finding fails; so does a session that did not reach the parser. Also
check that each harness does report a broken promise."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FUZZ_DIR = Path(__file__).resolve().parent
LONG = os.environ.get("HARDENING_LONG") == "1"
RUNS = 2_000_000 if LONG else 20_000
SECONDS = 600 if LONG else 12
# CI runs one fixed sequence of inputs (a session that fails does so for every run of the
# same code, not for one unlucky draw); the long session draws its own.
SEED = () if LONG else ("-seed=1",)
# target: the coverage (libFuzzer's "cov") its seeds reach at least. Only server/ is instrumented:
# urlencoded parsing is the standard library's (the harness checks the cap around it).
TARGETS = {"multipart": 1, "urlencoded": 1, "range": 1, "frames": 1}


CRASHES = [(t, p.name) for t in TARGETS for p in sorted((FUZZ_DIR / f"corpus_{t}").glob("crash-*"))]


@pytest.mark.parametrize("target,name", CRASHES)
def test_inputs_that_once_failed_pass(target, name):
    """Each crash-* of a target's corpus, through its harness's check() (a regression test)."""
    code = f"import fuzz_{target} as f\nf.check(open({name!r}, 'rb').read())\nprint('checked')\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=FUZZ_DIR / f"corpus_{target}", stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(FUZZ_DIR)})
    assert proc.returncode == 0 and "checked" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize("target", list(TARGETS))
def test_bounded_fuzzing_session_finds_nothing(target, tmp_path):
    corpus = FUZZ_DIR / f"corpus_{target}"
    assert any(p.name.startswith("seed-") for p in corpus.iterdir())
    cmd = [sys.executable, str(FUZZ_DIR / f"fuzz_{target}.py"), str(tmp_path), str(corpus),
           f"-atheris_runs={RUNS}", f"-max_total_time={SECONDS}", "-max_len=1024", "-timeout=10",
           f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", *SEED]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 120,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    crashes = [p.name for p in tmp_path.glob("crash-*")]
    assert proc.returncode == 0 and not crashes, f"{crashes}\n{output[-4000:]}"
    # The run really exercised the target: it read the corpus and measured coverage.
    inited = re.search(r"INITED cov: (\d+)", output)
    assert inited and int(inited.group(1)) >= TARGETS[target], output[-2000:]
    assert re.search(r"Done \d+ (runs|in)", output), output[-2000:]


# Per harness: what makes the checked code (or the reference) wrong, and an input that then
# breaks a promise.
BROKEN = {
    "multipart": ("f.python_multipart = lambda body, ctype: ('ok', ((b'a', None, b'other'),))\n",
                  "b'\\x00\\x00--B\\r\\nContent-Disposition: form-data; name=\"a\"\\r\\n\\r\\n1\\r\\n--B--'"),
    "urlencoded": ("f.parse_urlencoded = lambda text, enc, cap: {str(i): '' for i in range(cap + 1)}\n",
                   "b'\\x00a=1'"),
    "range": ("f.FileResponse._range = staticmethod(lambda request, etag, mtime, size: (0, size + 1))\n",
              "b'\\x80\\x10\\x00bytes=0-99'"),
    "frames": ("class Unbounded(f.FrameParser):\n"
               "    def __init__(self, max_size, *args, **kwargs):\n"
               "        super().__init__(0, *args, **kwargs)\n"
               "f.FrameParser = Unbounded\n",
               "b'\\x02\\x82\\xfe\\x02\\x58\\x00\\x00\\x00\\x00' + b'x' * 600"),
}


@pytest.mark.parametrize("target", list(BROKEN))
def test_harness_reports_a_broken_promise(target):
    setup, data = BROKEN[target]
    code = (f"import fuzz_{target} as f\n{setup}"
            f"try:\n    f.check({data})\nexcept f.FuzzFinding as exc:\n    print('finding:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=FUZZ_DIR, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "finding:" in proc.stdout, proc.stdout + proc.stderr[-2000:]
