"""What the HTTP/2 tests share: servers of each app kind with HTTP/2 on, certificates, curl."""

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import Gunicorn

HERE = Path(__file__).resolve().parent
KINDS = {"wsgi": "h2_apps:wsgi_app", "asgi": "h2_apps:asgi_app", "native": "h2_apps:web_app"}
H2 = ("--http-protocols", "h2,h1")
H2C = ("--http2-cleartext", "prior-knowledge")
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def h2_server(kind: str, *extra: str, threads: int = 4, env=None, h2c=True) -> Gunicorn:
    """A gunicorn serving the ``kind`` app with HTTP/2 (cleartext prior knowledge unless ``h2c`` False)."""
    return Gunicorn(KINDS[kind], *H2, *(H2C if h2c else ()), *extra, threads=threads, env=env, chdir=str(HERE))


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-sS", "--max-time", str(timeout), *args], capture_output=True, timeout=timeout + 10)


def make_pki(root: Path) -> dict:
    trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates (test extra)")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(root / "ca.pem")
    cert.private_key_pem.write_to_path(root / "key.pem")
    cert.cert_chain_pems[0].write_to_path(root / "cert.pem")
    return {"ca": ca, "cafile": str(root / "ca.pem"),
            "args": ("--certfile", str(root / "cert.pem"), "--keyfile", str(root / "key.pem"))}
