"""deploy/nginx-app.conf in front of a real gunicorn: the headers it sets are the ones the server
believes, and a client cannot forge them through it. gunicorn gets the proxy settings of the
shipped conf/gunicorn.conf.py (the client address and host are read only when asked for).
Skipped where nginx is not installed."""

import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from helpers import NGINX, Gunicorn, free_port, nginx_command, read_response, wait_until

trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates (test extra)")
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")  # shipped with nginx
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The shipped sites, and how gunicorn serves each: HTTP, and uwsgi (gunicorn's protocol = uwsgi).
SITES = {"http": ("nginx-app.conf", ()), "uwsgi": ("nginx-app-uwsgi.conf", ("--protocol", "uwsgi"))}


def shipped_proxy_env() -> dict:
    """The ASYNCWORKER_* proxy settings of conf/gunicorn.conf.py's raw_env."""
    namespace: dict = {}
    exec((DEPLOY.parent / "conf" / "gunicorn.conf.py").read_text(), namespace)
    pairs = dict(item.split("=", 1) for item in namespace["raw_env"])
    return {name: value for name, value in pairs.items()
            if name in ("ASYNCWORKER_PROXY_HEADERS", "ASYNCWORKER_FORWARDED_HOST")}


def site_for_test(site: str, upstream_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """A site as shipped, with ports and certificate paths of this test (IPv4 only)."""
    text = (DEPLOY / site).read_text()
    text = text.replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
    text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ", f"listen 127.0.0.1:{https_port} ")
    text = text.replace("/etc/letsencrypt/live/example.com/fullchain.pem", str(cert))
    return text.replace("/etc/letsencrypt/live/example.com/privkey.pem", str(key))


@pytest.fixture(scope="module", params=SITES)
def nginx(request, tmp_path_factory):
    site, gunicorn_args = SITES[request.param]
    root = tmp_path_factory.mktemp("nginx")
    ca = trustme.CA()
    cert = ca.issue_cert("example.com")
    cert.cert_chain_pems[0].write_to_path(root / "cert.pem")
    cert.private_key_pem.write_to_path(root / "key.pem")
    https_port = free_port()
    env = shipped_proxy_env()
    assert env == {"ASYNCWORKER_PROXY_HEADERS": "x-forwarded", "ASYNCWORKER_FORWARDED_HOST": "1"}
    with Gunicorn("proxy_app:app", *gunicorn_args, env=env) as gunicorn:
        (root / "site.conf").write_text(
            site_for_test(site, gunicorn.port, free_port(), https_port, root / "cert.pem", root / "key.pem"))
        if UWSGI_PARAMS.exists():  # (what the uwsgi site includes, next to nginx.conf as in /etc/nginx)
            shutil.copy(UWSGI_PARAMS, root / "uwsgi_params")
        command = nginx_command(root, root / "site.conf")
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: _listening(https_port), 15, what="nginx listening")
            context = ssl.create_default_context()
            ca.configure_trust(context)
            yield {"port": https_port, "context": context, "gunicorn": gunicorn}
        finally:
            proc.terminate()
            proc.wait(15)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def through_nginx(nginx, headers: str = "", source: str = "127.0.0.2") -> dict:
    raw = socket.create_connection(("127.0.0.1", nginx["port"]), timeout=10, source_address=(source, 0))
    with nginx["context"].wrap_socket(raw, server_hostname="example.com") as sock:
        sock.sendall(f"GET /who HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n{headers}\r\n".encode())
        response = read_response(sock)
    assert response.status == 200, response
    return json.loads(response.body)


def test_server_sees_the_client_scheme_and_host_nginx_saw(nginx):
    environ = through_nginx(nginx)
    assert environ["REMOTE_ADDR"] == "127.0.0.2"  # nginx's $remote_addr, not nginx itself
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == f"example.com:{nginx['port']}"


def test_client_cannot_forge_headers_through_nginx(nginx):
    forged = ("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Ssl: off\r\n"
              "Forwarded: for=7.7.7.7\r\nX-Forwarded-Host: evil.example\r\n")
    environ = through_nginx(nginx, forged)
    assert environ["REMOTE_ADDR"] == "127.0.0.2"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == f"example.com:{nginx['port']}"
    assert environ["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 127.0.0.2"  # appended, and read from the right
