"""``kill -HUP <master>`` (systemctl reload) under load: new workers take over, no request is lost.

Clients keep sending requests, on fresh connections and on keep-alive ones
(httpx), while the master is told to reload twice; every request must get its
200. ``RELOAD_ROUNDS`` (default 2) makes the run longer.
"""

import os
import signal
import threading

import httpx

from helpers import Gunicorn, connect, read_response, wait_until

APP = "proxy_app:app"
ROUNDS = int(os.environ.get("RELOAD_ROUNDS", "2"))


class Load:
    """Client threads sending requests until stopped; counts answers and failures."""

    def __init__(self, port: int, fresh: int = 3, keep_alive: int = 2):
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._fresh, daemon=True) for _ in range(fresh)]
        self._threads += [threading.Thread(target=self._keep_alive, daemon=True) for _ in range(keep_alive)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _record(self, status: int | None, what: str) -> None:
        with self._lock:
            if status == 200:
                self.ok += 1
            else:
                self.failures.append(what)

    def _fresh(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self.port, timeout=30) as sock:
                    sock.sendall(b"GET /slow?s=0.02 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    response = read_response(sock)
                self._record(response.status if response else None, f"fresh: {response}")
            except (OSError, ValueError) as exc:
                self._record(None, f"fresh: {exc!r}")

    def _keep_alive(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as client:
            while not self._stop.is_set():
                try:
                    status = client.get("/slow", params={"s": "0.02"}).status_code
                    self._record(status, f"keep-alive: {status}")
                except httpx.HTTPError as exc:
                    self._record(None, f"keep-alive: {exc!r}")


def test_hup_under_load_drops_no_request():
    with Gunicorn(APP, "--graceful-timeout", "10", threads=8) as gunicorn, Load(gunicorn.port) as load:
        wait_until(lambda: load.ok >= 20, 30, what="load to start")
        for _ in range(ROUNDS):
            before = set(gunicorn.worker_pids())
            answered = load.ok
            gunicorn.signal(signal.SIGHUP)
            # a new worker took over and the old one is gone
            wait_until(lambda: (pids := set(gunicorn.worker_pids())) and not pids & before, 30,
                       what="old worker replaced")
            wait_until(lambda: load.ok >= answered + 20, 30, what="requests answered by the new worker")
    assert load.failures == []  # the waits above already required answers before and after each reload
    assert gunicorn.log_text().count("Handling signal: hup") == ROUNDS
