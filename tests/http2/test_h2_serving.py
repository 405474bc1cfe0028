"""HTTP/2 served to real clients (curl with nghttp2, httpx with h2) for each app kind:
cleartext by prior knowledge, TLS by ALPN, and HTTP/1.1 still served beside it."""

import hashlib
import json
import ssl

import pytest

from h2_apps import PATTERN
from h2_support import HERE, KINDS, curl, h2_server, make_pki, needs_curl
from helpers import Gunicorn, connect, read_response

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

VERSION_OF = {"wsgi": "HTTP/2.0", "asgi": "2", "native": "2.0"}  # (ASGI http_version: "2", as its spec says)
DOWNLOAD = 5 * 1024 * 1024 + 7


def expected_download(n: int) -> str:
    whole, rest = divmod(n, len(PATTERN))
    return hashlib.sha256(PATTERN * whole + PATTERN[:rest]).hexdigest()


@pytest.fixture(scope="module", params=sorted(KINDS))
def server(request):
    with h2_server(request.param) as gunicorn:
        gunicorn.kind = request.param
        yield gunicorn


@needs_curl
def test_curl_prior_knowledge_gets_http2(server, tmp_path):
    result = curl("--http2-prior-knowledge", "-w", "\n%{http_version}", f"{server.base_url}/")
    assert result.returncode == 0, result.stderr
    body, version = result.stdout.decode().rsplit("\n", 1)
    assert version == "2"
    assert body == f"{server.kind} {VERSION_OF[server.kind]}"


@needs_curl
def test_curl_download_and_upload_are_exact(server, tmp_path):
    out = tmp_path / "down"
    result = curl("--http2-prior-knowledge", "-o", str(out), f"{server.base_url}/download?n={DOWNLOAD}")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == expected_download(DOWNLOAD)
    upload = tmp_path / "up"
    data = bytes(range(251)) * 12345
    upload.write_bytes(data)
    result = curl("--http2-prior-knowledge", "--data-binary", f"@{upload}", f"{server.base_url}/echo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def test_http1_is_still_served_on_the_same_port(server):
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(sock.makefile("rb"))
    assert response.status == 200
    assert response.body.decode().startswith(server.kind)


def test_httpx_http2(server):
    httpx = pytest.importorskip("httpx")
    with httpx.Client(http1=False, http2=True, base_url=server.base_url) as client:
        responses = [client.get("/") for _ in range(3)]
        echo = client.post("/echo", content=b"x" * 100000)
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert responses[0].text.startswith(server.kind)
    assert echo.text == f"100000 {hashlib.sha256(b'x' * 100000).hexdigest()}"


FORWARDING = [(), (("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")), (),
              (("x-forwarded-for", "198.51.100.7"),)]


def test_each_stream_is_given_the_client_and_scheme_an_http1_request_is():
    """Streams of one connection, some forwarded by the (trusted) peer and some not: each is
    given what an HTTP/1.1 request with the same fields is given."""
    from h2_client import H2Client

    async def over_h2(port):
        client = await H2Client.connect(port)
        try:
            return [(await client.request("GET", "/peer", headers=fields))[1].decode() for fields in FORWARDING]
        finally:
            await client.close()

    def over_http1(port, fields):
        with connect(port) as sock:
            extra = "".join(f"{name}: {value}\r\n" for name, value in fields)
            sock.sendall(f"GET /peer HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
            return read_response(sock).body.decode()

    import asyncio

    with h2_server("wsgi") as server:
        streams = asyncio.run(over_h2(server.port))
        requests = [over_http1(server.port, fields) for fields in FORWARDING]
    assert streams == requests
    assert requests[0] == requests[2] != requests[1] and requests[1].endswith("|https")


def test_asgi_streams_of_interleaved_connections_each_get_their_own_client():
    """The scope's client and server are shared by the streams of one connection, not beyond:
    streams of two connections, one after the other, each get their own connection's port,
    and a stream forwarded by the (trusted) peer in between its proxy's scheme (the client
    stays the peer, as in gunicorn, which reads no client from X-Forwarded-For)."""
    import asyncio

    from h2_client import H2Client

    async def interleaved(port):
        first, second = await H2Client.connect(port), await H2Client.connect(port)
        ports = {first: first.writer.get_extra_info("sockname")[1], second: second.writer.get_extra_info("sockname")[1]}
        order = [(first, ()), (second, ()), (first, FORWARDING[1]), (first, ()), (second, ()), (first, ())]
        try:
            return [(ports[client], (await client.request("GET", "/peer", headers=fields))[1].decode())
                    for client, fields in order]
        finally:
            await first.close()
            await second.close()

    with h2_server("asgi") as server:
        seen = asyncio.run(interleaved(server.port))
    server_part = f"|http|127.0.0.1:{server.port}"
    assert [body for _, body in seen] == [
        f"127.0.0.1:{port}" + (server_part if i != 2 else server_part.replace("|http|", "|https|"))
        for i, (port, _) in enumerate(seen)]
    assert seen[0][0] != seen[1][0]


def test_response_fields_again_on_one_connection_are_exact(server):
    """Responses of one head but other lengths, and the same response again: each has the
    content-length of its own body, and a date of now."""
    import asyncio
    from email.utils import parsedate_to_datetime

    from h2_client import H2Client

    async def run(port):
        client = await H2Client.connect(port)
        try:
            return [await client.request(method, path, body) for method, path, body in
                    [("GET", "/", None), ("POST", "/echo", b"x" * 5), ("POST", "/echo", b"y" * 100000),
                     ("GET", "/", None), ("POST", "/echo", b"z" * 7)]]
        finally:
            await client.close()

    import time
    responses = asyncio.run(run(server.port))
    for status, body, fields in responses:
        fields = dict(fields)
        assert status == 200
        if b"content-length" in fields:
            assert int(fields[b"content-length"]) == len(body)
        assert abs(parsedate_to_datetime(fields[b"date"].decode()).timestamp() - time.time()) < 5
    assert responses[1][1].startswith(b"5 ") and responses[2][1].startswith(b"100000 ")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@needs_curl
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tls_alpn_selects_h2(kind, pki):
    with h2_server(kind, *pki["args"], h2c=False) as server:
        url = f"https://127.0.0.1:{server.port}/"
        result = curl("--http2", "--cacert", pki["cafile"], "-w", "\n%{http_version}", url)
        old = curl("--http1.1", "--cacert", pki["cafile"], "-w", "\n%{http_version}", url)
        context = ssl.create_default_context()
        pki["ca"].configure_trust(context)
        context.set_alpn_protocols(["h2", "http/1.1"])
        with context.wrap_socket(connect(server.port), server_hostname="localhost") as sock:
            alpn = sock.selected_alpn_protocol()
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().rsplit("\n", 1) == [f"{kind} {VERSION_OF[kind]}", "2"]
    assert old.stdout.decode().rsplit("\n", 1)[1] == "1.1"
    assert alpn == "h2"


@needs_curl
def test_tls_without_h2_offers_http1_only(pki):
    with Gunicorn(KINDS["wsgi"], *pki["args"], chdir=str(HERE)) as server:
        result = curl("--http2", "--cacert", pki["cafile"], "-w", "\n%{http_version}",
                      f"https://127.0.0.1:{server.port}/")
    assert result.stdout.decode().rsplit("\n", 1) == ["wsgi HTTP/1.1", "1.1"]


@needs_curl
def test_prior_knowledge_only_from_trusted_peers():
    """As gunicorn's http2_cleartext: peers outside forwarded_allow_ips get HTTP/1.1 only."""
    with h2_server("wsgi", "--forwarded-allow-ips", "192.0.2.1") as server:
        result = curl("--http2-prior-knowledge", f"{server.base_url}/")
        plain = curl(f"{server.base_url}/")
    assert result.returncode != 0
    assert plain.stdout == b"wsgi HTTP/1.1"


@needs_curl
def test_without_http2_the_preface_is_not_http2():
    with Gunicorn(KINDS["wsgi"], chdir=str(HERE)) as server:
        result = curl("--http2-prior-knowledge", f"{server.base_url}/")
    assert result.returncode != 0


@needs_curl
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_upgrade_h2c_switches_a_request_without_a_body(kind, tmp_path):
    """curl --http2 on http:// asks with Upgrade: h2c; a request with a body stays HTTP/1.1."""
    upload = tmp_path / "up"
    upload.write_bytes(b"z" * 100000)
    with h2_server(kind, "--http2-cleartext", "upgrade", h2c=False) as server:
        get = curl("--http2", "-w", "\n%{http_version}", f"{server.base_url}/")
        big = curl("--http2", "-o", "/dev/null", "-w", "%{http_version} %{size_download}",
                   f"{server.base_url}/download?n={DOWNLOAD}")
        post = curl("--http2", "-w", "\n%{http_version}", "--data-binary", f"@{upload}",
                    f"{server.base_url}/echo")
        prior = curl("--http2-prior-knowledge", f"{server.base_url}/")
    assert get.stdout.decode().rsplit("\n", 1) == [f"{kind} {VERSION_OF[kind]}", "2"]
    assert big.stdout.decode() == f"2 {DOWNLOAD}"
    assert post.stdout.decode().rsplit("\n", 1) == [f"100000 {hashlib.sha256(b'z' * 100000).hexdigest()}", "1.1"]
    assert prior.returncode != 0  # upgrade alone: no prior knowledge


@needs_curl
def test_upgrade_h2c_only_for_trusted_peers_and_only_when_configured():
    with h2_server("wsgi", "--http2-cleartext", "upgrade", "--forwarded-allow-ips", "192.0.2.1",
                   h2c=False) as server:
        untrusted = curl("--http2", "-w", "\n%{http_version}", f"{server.base_url}/")
    with h2_server("wsgi") as server:  # prior knowledge only
        not_configured = curl("--http2", "-w", "\n%{http_version}", f"{server.base_url}/")
    assert untrusted.stdout.decode() == "wsgi HTTP/1.1\n1.1"
    assert not_configured.stdout.decode() == "wsgi HTTP/1.1\n1.1"
