"""Forwarded headers through a real gunicorn: believed from trusted peers only, and by
default only what gunicorn believes (the scheme, forwarder_headers).

The server trusts 127.0.0.1 (gunicorn's default ``forwarded_allow_ips``); the
same test connects from 127.0.0.2, another loopback address, to be an untrusted
peer of the very same server. Most tests opt in to the client address and host
(``OPTED_IN``); those at the end check the defaults.
"""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from helpers import APPS_DIR, BOOT_LINE, WORKER, Gunicorn, free_port, read_response, wait_until

APP = "proxy_app:app"
ACCESS_FORMAT = "ACCESS %(h)s %(U)s"
TRUSTED = "127.0.0.1"
UNTRUSTED = "127.0.0.2"
OPTED_IN = {"ASYNCWORKER_PROXY_HEADERS": "x-forwarded", "ASYNCWORKER_FORWARDED_HOST": "1"}


def ask(port: int, headers: str = "", source: str = TRUSTED, path: str = "/who", family=socket.AF_INET):
    """One request from ``source``; the parsed response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: internal:8000\r\n{headers}\r\n".encode())
        return read_response(sock)


def seen(port: int, headers: str = "", source: str = TRUSTED) -> dict:
    response = ask(port, headers, source)
    assert response.status == 200, response
    return json.loads(response.body)


@pytest.fixture(scope="module")
def server():
    with Gunicorn(APP, "--access-logfile", "-", "--access-logformat", ACCESS_FORMAT, env=OPTED_IN) as gunicorn:
        yield gunicorn


SPOOF = ("X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n"
         "X-Forwarded-Host: shop.example\r\nX-Forwarded-Port: 8443\r\nScript_Name: /shop\r\n")


def test_untrusted_peer_cannot_spoof_anything(server):
    environ = seen(server.port, SPOOF, source=UNTRUSTED)
    assert environ["REMOTE_ADDR"] == UNTRUSTED
    assert environ["REMOTE_PORT"] != "0"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["HTTP_HOST"] == "internal:8000"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("internal", "8000")
    assert environ["SCRIPT_NAME"] == ""
    assert environ["HTTP_X_FORWARDED_FOR"] == "198.51.100.7"  # still an ordinary header


def test_trusted_peer_sets_client_scheme_host_and_script_name(server):
    environ = seen(server.port, SPOOF, source=TRUSTED)
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("198.51.100.7", "0")
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "shop.example:8443"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("shop.example", "8443")
    assert environ["SCRIPT_NAME"] == "/shop"  # gunicorn's forwarder_headers


def test_trusted_chain_keeps_the_rightmost_untrusted_hop(server):
    environ = seen(server.port, "X-Forwarded-For: 6.6.6.6, 198.51.100.7, 127.0.0.1\r\n")
    assert environ["REMOTE_ADDR"] == "198.51.100.7"


def test_contradictory_scheme_headers_are_refused_from_trusted_peers_only(server):
    contradiction = "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n"
    refused = ask(server.port, contradiction, TRUSTED)
    assert refused.status == 400 and b"Contradictory scheme headers" in refused.body
    assert seen(server.port, contradiction, UNTRUSTED)["wsgi.url_scheme"] == "http"


def test_access_log_shows_the_forwarded_client(server):
    ask(server.port, "X-Forwarded-For: 198.51.100.77\r\n", TRUSTED, path="/trusted-log")
    ask(server.port, "X-Forwarded-For: 198.51.100.88\r\n", UNTRUSTED, path="/untrusted-log")
    ask(server.port, "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\nX-Forwarded-For: 198.51.100.99\r\n",
        TRUSTED, path="/refused-log")
    wait_until(lambda: "/refused-log" in server.log_text(), 10, what="access log lines")
    log = server.log_text()
    assert "ACCESS 198.51.100.77 /trusted-log" in log
    assert f"ACCESS {UNTRUSTED} /untrusted-log" in log
    assert "ACCESS 198.51.100.99 /refused-log" in log  # the server's own 400 is logged the same way


def test_not_trusted_when_outside_forwarded_allow_ips():
    with Gunicorn(APP, "--forwarded-allow-ips", "10.0.0.0/8,192.0.2.1", env=OPTED_IN) as gunicorn:
        environ = seen(gunicorn.port, SPOOF, TRUSTED)
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"], environ["HTTP_HOST"]) == \
        (TRUSTED, "http", "internal:8000")


def test_cidr_and_star_trust_other_peers():
    with Gunicorn(APP, "--forwarded-allow-ips", "127.0.0.0/30", env=OPTED_IN) as gunicorn:
        assert seen(gunicorn.port, SPOOF, UNTRUSTED)["REMOTE_ADDR"] == "198.51.100.7"
    with Gunicorn(APP, "--forwarded-allow-ips", "*", env=OPTED_IN) as gunicorn:
        assert seen(gunicorn.port, "X-Forwarded-For: 6.6.6.6, 198.51.100.7\r\n", UNTRUSTED)["REMOTE_ADDR"] == \
            "6.6.6.6"


def test_proxy_headers_setting_turns_the_client_address_off():
    with Gunicorn(APP, env={"ASYNCWORKER_PROXY_HEADERS": "off"}) as gunicorn:
        environ = seen(gunicorn.port, SPOOF, TRUSTED)
    assert environ["REMOTE_ADDR"] == TRUSTED and environ["HTTP_HOST"] == "internal:8000"
    assert environ["wsgi.url_scheme"] == "https"  # secure_scheme_headers is gunicorn's own switch


def test_the_client_address_without_the_host_unless_forwarded_host_is_set():
    with Gunicorn(APP, env={"ASYNCWORKER_PROXY_HEADERS": "x-forwarded"}) as gunicorn:
        environ = seen(gunicorn.port, SPOOF, TRUSTED)
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("198.51.100.7", "https")
    assert (environ["HTTP_HOST"], environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("internal:8000", "internal",
                                                                                      "8000")


def test_forwarded_host_without_a_family_stops_gunicorn_with_a_message():
    cmd = [sys.executable, "-m", "gunicorn", "-k", WORKER, "--no-control-socket", "-b",
           f"127.0.0.1:{free_port()}", "--chdir", str(APPS_DIR), APP]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "ASYNCWORKER_FORWARDED_HOST": "1"})
    assert result.returncode == 1
    assert "ASYNCWORKER_FORWARDED_HOST=1 reads the host of a forwarding family" in result.stderr
    assert BOOT_LINE not in result.stderr


def test_rfc7239_forwarded_mode():
    headers = 'Forwarded: for=6.6.6.6, for="198.51.100.7:4711";proto=https;host=shop.example\r\n' \
              "X-Forwarded-For: 9.9.9.9\r\n"
    env = {"ASYNCWORKER_PROXY_HEADERS": "forwarded", "ASYNCWORKER_FORWARDED_HOST": "1"}
    with Gunicorn(APP, env=env) as gunicorn:
        trusted = seen(gunicorn.port, headers, TRUSTED)
        untrusted = seen(gunicorn.port, headers, UNTRUSTED)
    assert (trusted["REMOTE_ADDR"], trusted["REMOTE_PORT"]) == ("198.51.100.7", "4711")
    assert (trusted["wsgi.url_scheme"], trusted["HTTP_HOST"]) == ("https", "shop.example")
    assert (untrusted["REMOTE_ADDR"], untrusted["wsgi.url_scheme"]) == (UNTRUSTED, "http")


def test_unix_socket_peers_are_trusted_as_gunicorn_does(tmp_path):
    path = tmp_path / "app.sock"
    with Gunicorn(APP, "-b", f"unix:{path}", "--forwarded-allow-ips", "10.9.9.9", env=OPTED_IN) as gunicorn:
        wait_until(path.exists, 10, what="unix socket")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + SPOOF.encode() + b"\r\n")
            response = read_response(sock)
        from_tcp = seen(gunicorn.port, SPOOF, TRUSTED)
    environ = json.loads(response.body)
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("198.51.100.7", "https")
    assert from_tcp["REMOTE_ADDR"] == TRUSTED  # TCP peers still need forwarded_allow_ips


@pytest.mark.parametrize("app, kind, view", [
    ("proxy_app:asgi_app", "asgi", lambda body: (body["client"][0], body["scheme"])),
    ("proxy_app:native_app", "native", lambda body: (body["remote"], body["scheme"])),
])
def test_asgi_and_native_apps_see_the_same_client(app, kind, view):
    with Gunicorn(app, env={**OPTED_IN, "ASYNCWORKER_APP_KIND": kind}) as gunicorn:
        trusted = ask(gunicorn.port, SPOOF, TRUSTED)
        untrusted = ask(gunicorn.port, SPOOF, UNTRUSTED)
    assert view(json.loads(trusted.body)) == ("198.51.100.7", "https")
    assert view(json.loads(untrusted.body)) == (UNTRUSTED, "http")


@pytest.mark.parametrize("app, kind, view", [
    ("proxy_app:asgi_app", "asgi", lambda body: (body["client"][0], body["scheme"])),
    ("proxy_app:native_app", "native", lambda body: (body["remote"], body["scheme"])),
])
def test_each_request_of_a_connection_has_its_own_forwarded_client(app, kind, view):
    """What a request forwarded is not kept for the next ones on the same connection."""
    with Gunicorn(app, env={**OPTED_IN, "ASYNCWORKER_APP_KIND": kind}) as gunicorn:
        with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10) as sock:
            seen_in_turn = []
            for headers in ("", SPOOF, "", SPOOF):
                sock.sendall(f"GET /who HTTP/1.1\r\nHost: internal:8000\r\n{headers}\r\n".encode())
                seen_in_turn.append(view(json.loads(read_response(sock).body)))
    direct, forwarded = (TRUSTED, "http"), ("198.51.100.7", "https")
    assert seen_in_turn == [direct, forwarded, direct, forwarded]


def test_native_request_host_is_the_forwarded_host_from_trusted_peers_only():
    with Gunicorn("proxy_app:native_app", env={**OPTED_IN, "ASYNCWORKER_APP_KIND": "native"}) as gunicorn:
        trusted = json.loads(ask(gunicorn.port, SPOOF, TRUSTED).body)
        untrusted = json.loads(ask(gunicorn.port, SPOOF, UNTRUSTED).body)
    assert trusted["host"] == "shop.example:8443"
    assert untrusted["host"] == "internal:8000"


@pytest.mark.parametrize("app, kind", [("proxy_app:app", "wsgi"), ("proxy_app:asgi_app", "asgi")])
def test_header_map_refuse_answers_400_to_a_name_with_an_underscore(app, kind):
    """gunicorn's header_map = refuse: any field name with "_" gets a 400, except the
    forwarder_headers of a trusted proxy; other requests on the server are served."""
    with Gunicorn(app, "--header-map", "refuse", env={"ASYNCWORKER_APP_KIND": kind}) as gunicorn:
        refused = ask(gunicorn.port, "X_Custom: 1\r\n", UNTRUSTED)
        assert refused.status == 400 and b"X_Custom" in refused.body
        assert ask(gunicorn.port, "X-Custom: 1\r\n", UNTRUSTED).status == 200
        assert ask(gunicorn.port, "Script_Name: /shop\r\n", TRUSTED).status == 200  # a forwarder header
        assert ask(gunicorn.port, "Script_Name: /shop\r\n", UNTRUSTED).status == 400


def test_header_map_drop_is_the_default_and_lenient_settings_are_reported():
    with Gunicorn(APP, "--permit-obsolete-folding", "--header-map", "dangerous") as gunicorn:
        assert ask(gunicorn.port, "X_Custom: 1\r\n", UNTRUSTED).status == 200  # dropped, not refused
        log = wait_until(lambda: "header_map = dangerous is not supported" in gunicorn.log_text()
                         and gunicorn.log_text(), 5, what="the warnings")
    assert "permit_obsolete_folding is not supported by this worker" in log


# -- the defaults: what gunicorn believes, and no more ---------------------------------


@pytest.mark.parametrize("app, kind", [("proxy_app:app", "wsgi"), ("proxy_app:asgi_app", "asgi"),
                                       ("proxy_app:native_app", "native")])
def test_by_default_a_trusted_peer_sets_the_scheme_but_not_the_client_or_host(app, kind):
    """As gunicorn: X-Forwarded-For and X-Forwarded-Host from 127.0.0.1 are ordinary
    headers (a local process or a proxy passing them through cannot choose the client
    address or the Host the app sees); X-Forwarded-Proto still sets the scheme."""
    with Gunicorn(app, "--access-logfile", "-", "--access-logformat", ACCESS_FORMAT,
                  env={"ASYNCWORKER_APP_KIND": kind}) as gunicorn:
        response = ask(gunicorn.port, SPOOF, TRUSTED, path="/who")
        assert response.status == 200
        body = json.loads(response.body)
        line = wait_until(lambda: re.search(r"ACCESS \S+ /who", gunicorn.log_text()), 10, what="the access log line")
        assert line.group(0) == f"ACCESS {TRUSTED} /who"
    if kind == "wsgi":
        assert (body["REMOTE_ADDR"], body["wsgi.url_scheme"]) == (TRUSTED, "https")
        assert (body["HTTP_HOST"], body["SERVER_NAME"], body["SERVER_PORT"]) == ("internal:8000", "internal", "8000")
        assert body["HTTP_X_FORWARDED_FOR"] == "198.51.100.7"  # passed on as a header, as gunicorn does
        assert body["SCRIPT_NAME"] == "/shop"  # forwarder_headers: gunicorn's own
    elif kind == "asgi":
        assert (body["client"][0], body["scheme"]) == (TRUSTED, "https")
    else:
        assert (body["remote"], body["scheme"], body["host"]) == (TRUSTED, "https", "internal:8000")
