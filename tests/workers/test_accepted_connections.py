"""What the worker learns at accept goes with each connection (workers/listeners.py): the
client's address, the local one, and SO_KEEPALIVE (``ASYNCWORKER_TCP_KEEPALIVE``), on a real
worker, for a listener bound to one address and for a wildcard bind."""

import json
import subprocess

import pytest

from helpers import Gunicorn, connect, free_port, read_response, wait_until

APP = "asgi_apps:app"


def scope_over(port: int) -> tuple[dict, tuple]:
    with connect(port) as sock:
        sock.sendall(b"GET /scope HTTP/1.1\r\nHost: test\r\n\r\n")
        scope = json.loads(read_response(sock).body)
        return scope, sock.getsockname()


def test_the_scope_has_the_addresses_of_a_bound_and_of_a_wildcard_listener():
    wildcard = free_port()
    with Gunicorn(APP, "-b", f"0.0.0.0:{wildcard}") as server:
        bound_scope, bound_client = scope_over(server.port)
        wild_scope, wild_client = scope_over(wildcard)
    assert bound_scope["client"] == list(bound_client) and bound_scope["server"] == ["127.0.0.1", server.port]
    # (a wildcard listener does not know the local address: the connection's own socket tells)
    assert wild_scope["client"] == list(wild_client) and wild_scope["server"] == ["127.0.0.1", wildcard]


def server_side_timer(port: int, client_port: int) -> str:
    """The timer ``ss`` shows on the worker's side of the connection from ``client_port``."""
    shown = subprocess.run(["ss", "-tnoH", "state", "established", f"( sport = :{port} and dport = :{client_port} )"],
                           capture_output=True, text=True, timeout=10).stdout
    return shown


@pytest.mark.parametrize("setting, expected", [(None, True), ("1", True), ("0", False)])
def test_so_keepalive_is_on_each_connection_as_set(setting, expected):
    if subprocess.run(["ss", "-V"], capture_output=True).returncode != 0:
        pytest.skip("needs ss (iproute2)")
    env = {} if setting is None else {"ASYNCWORKER_TCP_KEEPALIVE": setting}
    with Gunicorn(APP, env=env) as server, connect(server.port) as sock:
        sock.sendall(b"GET /scope HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(sock).status == 200  # (the connection is accepted and served)
        shown = wait_until(lambda: server_side_timer(server.port, sock.getsockname()[1]), 5, what="the connection in ss")
    assert ("timer:(keepalive" in shown) is expected, shown
