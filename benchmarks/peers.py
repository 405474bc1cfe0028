"""The servers the suite compares, and how each one is found, started and stopped.

    Target (server + app kind) ──command()──► one process on 127.0.0.1:<free port>
                                               (pinned to the server core)

A *server* is a family (``asyncworker``, ``gthread``, ``granian``, ...); a
*target* is one running process of it serving one kind of app: ``wsgi``
(``benchmarks/apps/hello.py``, which serves every route of cases.py),
``asgi`` (``asgi_hello.py``) or ``native`` (``native_hello.py`` for this worker,
``aiohttp_hello.py`` for aiohttp). Every target gets one worker process, no
access log, the same keep-alive, backlog and connection limit.

Peers run from a Python environment of their own (``find_peers_python``): the
current interpreter if it has them all, else ``benchmarks/.peers-venv``, which
is created and filled with pip when missing.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
APPS_DIR = os.path.join(BENCH_DIR, "apps")
PEERS_VENV = os.path.join(BENCH_DIR, ".peers-venv")

THREADS = 8  # --threads of the threaded WSGI servers
KEEP_ALIVE = 5  # seconds, for every server (gthread's default would be 2)
BACKLOG = 2048  # listen queue, for every server that takes one
WORKER_CONNECTIONS = 2048  # gunicorn's default (1000) would leave the c=1000 probes waiting by design
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL

# import name -> pip requirement, for the peers' environment
PEER_MODULES = {
    "gunicorn": "gunicorn",
    "uvicorn_worker": "uvicorn-worker",
    "uvicorn": "uvicorn[standard]",
    "httptools": "httptools",
    "uvloop": "uvloop",
    "waitress": "waitress",
    "granian": "granian",
    "aiohttp": "aiohttp",
    "hypercorn": "hypercorn",
}

# app kind -> module in the apps directory
APP_MODULES = {"wsgi": "hello", "asgi": "asgi_hello", "native": "native_hello", "aiohttp": "aiohttp_hello"}
APP_ATTRIBUTES = ("app", "application", "make_app", "create_app")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- environments

def missing_modules(python: str, modules) -> list[str]:
    """The modules of ``modules`` that ``python`` cannot import."""
    code = ("import importlib.util, sys\n"
            "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))")
    proc = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return list(modules)
    return proc.stdout.split()


def find_peers_python(explicit: str | None, install: bool) -> str:
    """An interpreter that has the peers: explicit, this one, or the peers venv (made if needed)."""
    if explicit:
        return explicit
    if not missing_modules(sys.executable, PEER_MODULES):
        return sys.executable
    python = os.path.join(PEERS_VENV, "bin", "python")
    if not os.path.exists(python):
        if not install:
            log(f"peers missing from {sys.executable} and no {PEERS_VENV}: peers will be skipped "
                "(drop --no-install to create it)")
            return sys.executable
        log(f"creating {PEERS_VENV}")
        subprocess.run([sys.executable, "-m", "venv", PEERS_VENV], check=True, timeout=300)
    missing = missing_modules(python, PEER_MODULES)
    if missing and install:
        log(f"installing into {PEERS_VENV}: {' '.join(PEER_MODULES[m] for m in missing)}")
        subprocess.run([python, "-m", "pip", "install", "-q", *(PEER_MODULES[m] for m in missing)],
                       check=True, timeout=900)
    return python


def resolve_app(python: str, apps_dir: str, module: str) -> tuple[str | None, str]:
    """``("module:attr", "")`` for the app of ``module`` in ``apps_dir``, or ``(None, why not)``."""
    if not os.path.exists(os.path.join(apps_dir, module + ".py")):
        return None, f"{module}.py not in {apps_dir}"
    code = ("import importlib, sys\n"
            f"m = importlib.import_module({module!r})\n"
            f"print(next((a for a in {APP_ATTRIBUTES!r} if hasattr(m, a)), ''))")
    proc = subprocess.run([python, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**clean_env(), "PYTHONPATH": apps_dir})
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return None, f"{module}.py does not import: {lines[-1] if lines else proc.returncode}"
    attr = proc.stdout.strip()
    if not attr:
        return None, f"{module}.py has none of {', '.join(APP_ATTRIBUTES)}"
    return f"{module}:{attr}", ""


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("GUNICORN_CMD_ARGS", "PYTHONPATH")}


# ---------------------------------------------------------------- targets

@dataclass
class Target:
    """One server process serving one kind of app."""

    name: str  # unique: "asyncworker", "asyncworker-asgi", "granian", ...
    server: str  # the family, for the ratio columns: "asyncworker", "gthread", "uvicorn", "granian", ...
    kind: str  # "wsgi", "asgi" or "native"
    python: str
    needs: tuple = ()  # modules the python must import
    app_module: str = ""
    app: str | None = None  # "module:attr", once resolved
    skip: str = ""  # why it cannot run
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: str = ""
    cmd: list = field(default_factory=list)

    def command(self, apps_dir: str) -> list[str]:
        return COMMANDS[self.server](self, apps_dir)

    def worker_pid(self) -> int | None:
        """The process that serves requests: the (only) child of a master, else the process."""
        if self.proc is None:
            return None
        children = _children(self.proc.pid)
        return max(children, key=rss_kib) if children else self.proc.pid


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _gunicorn(worker_class: str, threads: bool = False, extra=()):
    def command(t: Target, apps_dir: str) -> list[str]:
        cmd = [t.python, "-m", "gunicorn", "-k", worker_class, "--workers", "1",
               "--bind", f"127.0.0.1:{t.port}", "--keep-alive", str(KEEP_ALIVE),
               "--backlog", str(BACKLOG), "--worker-connections", str(WORKER_CONNECTIONS),
               "--no-control-socket", "--log-level", "warning", "--graceful-timeout", "5",
               "--pythonpath", apps_dir, *extra]
        if threads:
            cmd += ["--threads", str(THREADS)]
        if worker_class == "server.workers.AsyncWorker":
            cmd += ["--env", f"ASYNCWORKER_APP_KIND={t.kind}"]
        return cmd + [t.app]   # no --access-logfile: access log stays off
    return command


def _granian(t: Target, apps_dir: str) -> list[str]:
    return [t.python, "-m", "granian", "--interface", t.kind, "--workers", "1",
            "--host", "127.0.0.1", "--port", str(t.port), "--backlog", str(BACKLOG),
            "--no-ws", "--log-level", "warning", "--working-dir", apps_dir, t.app]


def _waitress(t: Target, apps_dir: str) -> list[str]:
    return [t.python, "-m", "waitress", f"--listen=127.0.0.1:{t.port}", f"--threads={THREADS}",
            f"--backlog={BACKLOG}", f"--channel-timeout={KEEP_ALIVE * 6}", t.app]


def _hypercorn(t: Target, apps_dir: str) -> list[str]:
    return [t.python, "-m", "hypercorn", "--workers", "1", "-k", "uvloop", "--bind", f"127.0.0.1:{t.port}",
            "--backlog", str(BACKLOG), "--keep-alive", str(KEEP_ALIVE), "--log-level", "warning", t.app]


def _aiohttp(t: Target, apps_dir: str) -> list[str]:
    return [t.python, os.path.join(APPS_DIR, "serve_aiohttp.py"), "--port", str(t.port),
            "--backlog", str(BACKLOG), t.app]


COMMANDS = {
    "asyncworker": _gunicorn("server.workers.AsyncWorker", threads=True),
    "gthread": _gunicorn("gthread", threads=True),
    "sync": _gunicorn("sync"),  # no --threads: gunicorn would turn sync with threads > 1 into gthread
    "gunicorn-asgi": _gunicorn("asgi"),
    "uvicorn": _gunicorn("uvicorn_worker.UvicornWorker"),
    "waitress": _waitress,
    "granian": _granian,
    "aiohttp": _aiohttp,
    "hypercorn": _hypercorn,
}

# (name, server, kind, app module, needs a peer interpreter, modules it needs)
TARGETS = (
    ("asyncworker", "asyncworker", "wsgi", "wsgi", False, ("gunicorn", "uvloop")),
    ("gthread", "gthread", "wsgi", "wsgi", False, ("gunicorn",)),
    ("sync", "sync", "wsgi", "wsgi", False, ("gunicorn",)),
    ("waitress", "waitress", "wsgi", "wsgi", True, ("waitress",)),
    ("granian", "granian", "wsgi", "wsgi", True, ("granian",)),
    ("asyncworker-asgi", "asyncworker", "asgi", "asgi", False, ("gunicorn", "server.asgi.serving")),
    ("gunicorn-asgi", "gunicorn-asgi", "asgi", "asgi", True, ("gunicorn", "gunicorn.workers.gasgi")),
    ("uvicorn", "uvicorn", "asgi", "asgi", True, ("uvicorn_worker", "httptools", "uvloop")),
    ("hypercorn", "hypercorn", "asgi", "asgi", True, ("hypercorn", "uvloop")),
    ("granian-asgi", "granian", "asgi", "asgi", True, ("granian",)),
    ("asyncworker-native", "asyncworker", "native", "native", False, ("gunicorn", "server.web.serving")),
    ("aiohttp", "aiohttp", "native", "aiohttp", True, ("aiohttp",)),
)
TARGET_NAMES = tuple(t[0] for t in TARGETS)


def make_targets(names, peers_python: str, apps_dir: str) -> list[Target]:
    """The targets named, each with its app resolved or a reason to skip it."""
    targets = []
    for name, server, kind, app_kind, is_peer, needs in TARGETS:
        if name not in names:
            continue
        python = peers_python if is_peer else sys.executable
        t = Target(name, server, kind, python, needs, APP_MODULES[app_kind])
        missing = _missing_cached(python, needs)
        if missing:
            t.skip = f"{python} cannot import {', '.join(missing)}"
        else:
            t.app, t.skip = resolve_app(python, apps_dir, t.app_module)
        targets.append(t)
    return targets


_missing_cache: dict = {}


def _missing_cached(python: str, modules) -> list[str]:
    key = (python, tuple(modules))
    if key not in _missing_cache:
        env_cwd = os.getcwd()
        try:
            os.chdir(REPO)  # the project's own packages import from the repository
            _missing_cache[key] = missing_modules(python, modules)
        finally:
            os.chdir(env_cwd)
    return _missing_cache[key]


# ---------------------------------------------------------------- processes

def start(t: Target, apps_dir: str, prefix: list[str], extra_env: dict | None = None, source: str = REPO) -> None:
    """Start ``t``; this worker runs from the tree ``source`` (its working directory: ``python -m``
    puts it first on the path), the repository unless pairs.py runs another revision."""
    t.port = free_port()
    t.cmd = t.command(apps_dir)
    fd, t.log_path = tempfile.mkstemp(prefix=f"bench-{t.name}-", suffix=".log")
    env = clean_env()
    env.update(extra_env or {})
    env["PYTHONPATH"] = apps_dir
    with os.fdopen(fd, "wb") as logf:
        t.proc = subprocess.Popen(prefix + t.cmd, cwd=source, env=env, stdin=subprocess.DEVNULL,
                                  stdout=logf, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # own group: clean kill, no stray Ctrl-C


def log_tail(t: Target, n: int = 15) -> str:
    try:
        with open(t.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def alive(t: Target) -> bool:
    return t.proc is not None and t.proc.poll() is None


def stop(t: Target) -> None:
    proc = t.proc
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # graceful shutdown of the master
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            log(f"  {t.name}: no exit {STOP_GRACE:.0f}s after SIGTERM, sending SIGKILL")
    try:  # the group we created: also catches a worker orphaned by a dead master
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    t.proc = None
    try:
        os.unlink(t.log_path)
    except OSError:
        pass


def pinning() -> tuple[list[str], list[str], set | None]:
    """``(server prefix, load prefix, load cores)``: taskset commands, or no pinning."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2 or not shutil.which("taskset"):
        log(f"WARNING: {len(cores) or 'unknown'} usable core(s) or no taskset: running UNPINNED "
            "(server and load generator share the CPU; numbers mean less)")
        return [], [], None
    return ["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[1])], {cores[1]}


def wait_port(t: Target, deadline: float) -> None:
    """Wait until the target accepts connections (or exits, or the deadline passes)."""
    while time.monotonic() < deadline:
        if not alive(t):
            raise RuntimeError(f"exited with code {t.proc.returncode} during boot")
        try:
            with socket.create_connection(("127.0.0.1", t.port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("did not listen in time")
