"""TLS through the loop with gunicorn's SSL settings, against a certificate authority made here (trustme)."""

import json
import shutil
import ssl
import subprocess
import time

import pytest

from helpers import Gunicorn, connect, read_response, read_until_eof, write_uncached

trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates (test extra)")

APP = "proxy_app:app"
REQUEST = b"GET /tls HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as files."""
    root = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    client_cert = ca.issue_cert("client@example.test")
    ca.cert_pem.write_to_path(root / "ca.pem")
    server_cert.private_key_pem.write_to_path(root / "key.pem")
    server_cert.cert_chain_pems[0].write_to_path(root / "cert.pem")
    return {"ca": ca, "client": client_cert, "dir": root,
            "args": ["--certfile", str(root / "cert.pem"), "--keyfile", str(root / "key.pem")]}


def client_context(pki, **options) -> ssl.SSLContext:
    context = ssl.create_default_context()
    pki["ca"].configure_trust(context)
    for name, value in options.items():
        setattr(context, name, value)
    return context


def tls_request(port: int, context: ssl.SSLContext, request: bytes = REQUEST):
    with context.wrap_socket(connect(port, timeout=10), server_hostname="localhost") as sock:
        sock.sendall(request)
        return read_response(sock), sock.version(), sock.cipher()[0], sock.selected_alpn_protocol()


@pytest.fixture(scope="module")
def server(pki):
    with Gunicorn(APP, *pki["args"], env={"ASYNCWORKER_HEADER_TIMEOUT": "1"}) as gunicorn:
        yield gunicorn


def test_python_ssl_client(server, pki):
    context = client_context(pki)
    context.set_alpn_protocols(["h2", "http/1.1"])
    response, _, _, alpn = tls_request(server.port, context)
    assert response.status == 200
    environ = json.loads(response.body)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_PORT"] == "443"  # Host without a port, on https
    assert alpn == "http/1.1"  # never h2: this server speaks HTTP/1.1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_cacert(server, pki):
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", str(pki["dir"] / "ca.pem"),
         f"https://127.0.0.1:{server.port}/curl"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["wsgi.url_scheme"] == "https"


def test_failed_handshakes_cost_nothing_else(server, pki):
    """Plain HTTP, garbage and an untrusting client: closed, logged at debug level only, worker unharmed."""
    pids = server.worker_pids()
    with connect(server.port) as sock:
        sock.sendall(REQUEST)
        assert read_until_eof(sock, 10) == (b"", True)
    with connect(server.port) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")
        assert read_until_eof(sock, 10)[1]
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_request(server.port, ssl.create_default_context())  # does not trust our CA
    response, *_ = tls_request(server.port, client_context(pki))
    assert response.status == 200
    assert server.worker_pids() == pids
    log = server.log_text().splitlines()
    assert [line for line in log if "[ERROR]" in line or "[WARNING]" in line or "Traceback" in line] == []
    failures = [line for line in log if "TLS handshake" in line]
    assert len(failures) >= 3 and all("[DEBUG]" in line for line in failures)


def test_stalled_handshake_is_dropped_after_the_header_timeout(server):
    with connect(server.port, timeout=10) as sock:
        started = time.monotonic()
        data, closed = read_until_eof(sock, 10)
    assert closed and data == b""
    assert time.monotonic() - started < 8  # ASYNCWORKER_HEADER_TIMEOUT=1, far below the 60 s asyncio default


def test_client_certificates_with_cert_reqs_and_ca_certs(pki):
    args = [*pki["args"], "--ca-certs", str(pki["dir"] / "ca.pem"), "--cert-reqs", str(int(ssl.CERT_REQUIRED))]
    with Gunicorn(APP, *args) as gunicorn:
        with_cert = client_context(pki)
        pki["client"].configure_cert(with_cert)
        response, *_ = tls_request(gunicorn.port, with_cert)
        assert response.status == 200
        try:  # with TLS 1.3 the refusal arrives after the client's side of the handshake
            response, *_ = tls_request(gunicorn.port, client_context(pki))
        except (ssl.SSLError, ConnectionError):
            response = None
        assert response is None


def test_ssl_context_hook_and_ciphers(pki, tmp_path):
    conf = tmp_path / "tls.conf.py"
    conf.write_text(
        "import ssl\n"
        "def ssl_context(conf, default_ssl_context_factory):\n"
        "    context = default_ssl_context_factory()\n"
        "    context.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        "    return context\n")
    with Gunicorn(APP, "-c", str(conf), *pki["args"]) as gunicorn:
        _, version, _, _ = tls_request(gunicorn.port, client_context(pki))
        assert version == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            tls_request(gunicorn.port, client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2))

    cipher = "ECDHE-ECDSA-AES256-GCM-SHA384"
    with Gunicorn(APP, *pki["args"], "--ciphers", cipher) as gunicorn:
        tls12 = client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
        assert tls_request(gunicorn.port, tls12)[2] == cipher
        other = client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
        other.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        with pytest.raises(ssl.SSLError):
            tls_request(gunicorn.port, other)


def test_forwarded_proto_behind_tls_terminating_proxy_is_unaffected_by_tls(server, pki):
    request = REQUEST.replace(b"\r\n\r\n", b"\r\nX-Forwarded-Proto: http\r\n\r\n")
    response, *_ = tls_request(server.port, client_context(pki), request)
    assert json.loads(response.body)["wsgi.url_scheme"] == "http"  # gunicorn: trusted scheme headers decide


@pytest.mark.parametrize("app", ["file_apps:wsgi_app", "file_apps:asgi_app"])
@pytest.mark.parametrize("cached", [True, False])
def test_files_over_tls_go_by_blocks_exact(pki, tmp_path, app, cached):
    """No sendfile through TLS: blocks, read on the loop from the page cache or in a thread
    from the disk (a file written past the cache), each encrypted and written."""
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    path = tmp_path / "file.bin"
    if cached:
        path.write_bytes(data)
    else:
        write_uncached(path, data)
    with Gunicorn(app, *pki["args"]) as srv:
        request = f"GET /file?path={path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        response, _, _, _ = tls_request(srv.port, client_context(pki), request)
    assert response.status == 200
    assert response.body == data
