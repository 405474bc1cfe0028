"""The connection cap is fair (gunicorn's default worker_connections, 1000): a client that
waits in the accept queue while the worker is full is served, because idle keep-alive
connections make room, oldest first, and busy ones end after their current response."""

import selectors
import shutil
import socket
import subprocess
import threading
import time

import pytest

from hardening_support import timed_get
from helpers import Gunicorn

IDLE = 2000  # twice the default worker_connections
REQUEST = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"


class IdleClients:
    """``n`` clients that each send one request, read its answer and stay connected."""

    def __init__(self, port: int, n: int):
        self.selector = selectors.DefaultSelector()
        self.socks = []
        for _ in range(n):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            self.socks.append(sock)
            self.selector.register(sock, selectors.EVENT_WRITE)
        self.answered = 0

    def run_for(self, seconds: float) -> None:
        """Send each request once connected; read whatever answers come."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for key, events in self.selector.select(timeout=0.05):
                sock = key.fileobj
                if events & selectors.EVENT_WRITE:
                    sock.send(REQUEST)
                    self.selector.modify(sock, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(sock)
                self.answered += data.count(b"HTTP/1.1 200 ")

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.selector.close()


def test_a_fresh_client_is_served_while_idle_connections_fill_the_worker(figure):
    with Gunicorn("record_apps:wsgi_app") as srv:  # gunicorn's defaults: 1000 connections, keep-alive 2 s
        clients = IdleClients(srv.port, IDLE)
        try:
            clients.run_for(1.0)  # the first thousand are answered and idle; the rest wait
            answered_before = clients.answered
            result = []
            probe = threading.Thread(target=lambda: result.append(timed_get(srv.port, "/hello")))
            probe.start()
            clients.run_for(1.5)
            probe.join(10)
        finally:
            clients.close()
    figure(f"{IDLE} idle keep-alive connections, worker_connections 1000", "a fresh client answered in",
           round(result[0] * 1000) if result and result[0] else None, "ms", "< 1000")
    assert answered_before >= 900  # (the worker was full of idle connections)
    assert result and result[0] is not None and result[0] < 1.0
