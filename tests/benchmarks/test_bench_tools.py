"""The benchmark suite's measuring tools (benchmarks/load.py), on real sockets and real wrk output."""

import socket
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import load  # noqa: E402

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8000/
  1 threads and 1000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    58.22ms  148.11ms   1.98s    97.56%
    Req/Sec     8.15k     1.43k   10.57k    64.10%
  Latency Distribution
     50%   21.50ms
     75%   30.00ms
     90%   80.00ms
     99%    1.20s
  32076 requests in 4.00s, 4.19MB read
  Socket errors: connect 0, read 2, write 0, timeout 61
  Non-2xx or 3xx responses: 7
Requests/sec:   8010.74
Transfer/sec:      1.05MB
"""


def test_wrk_output_is_parsed_with_units_and_errors():
    run = load.parse_wrk(WRK_OUTPUT)
    assert run["rps"] == 8010.74
    assert run["p50_ms"] == 21.5 and run["p99_ms"] == 1200.0
    assert run["requests"] == 32076
    assert run["socket_errors"] == {"connect": 0, "read": 2, "write": 0, "timeout": 61}
    assert load.n_errors(run) == 70


def test_wrk_output_without_a_rate_is_an_error():
    with pytest.raises(ValueError):
        load.parse_wrk("unable to connect to 127.0.0.1:8000 Connection refused\n")


@pytest.fixture
def listening():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def test_accept_queue_counts_connections_not_yet_accepted(listening):
    port = listening.getsockname()[1]
    assert load.accept_queue(port) == 0
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        assert load.accept_queue(port) == 3
        listening.accept()[0].close()
        assert load.accept_queue(port) == 2
    finally:
        for c in clients:
            c.close()


def serve_once(listening, response: bytes) -> threading.Thread:
    def answer():
        conn, _ = listening.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(response)
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_fetch_reads_a_chunked_answer(listening):
    serve_once(listening, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n")
    r = load.fetch(listening.getsockname()[1], "/chunked", timeout=5)
    assert (r.status, r.body) == (200, b"hello world")
    assert "content-length" not in r.headers


def test_a_probe_that_gets_no_answer_in_time_is_unanswered(listening, monkeypatch):
    monkeypatch.setattr(load, "PROBE_TIMEOUT", 0.3)
    ms, why = load.probe(listening.getsockname()[1])  # accepted by the kernel, never answered
    assert ms is None and why.startswith("TimeoutError")


def test_a_probe_answered_reports_its_time(listening):
    serve_once(listening, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    ms, why = load.probe(listening.getsockname()[1])
    assert why == "" and 0 < ms < load.PROBE_TIMEOUT * 1000


# --- benchmarks/instructions.py: the in-memory loop it counts -------------------------------

INSTRUCTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "instructions.py"


@pytest.mark.parametrize("target", ["asyncworker-asgi", "asyncworker-native"])
def test_instruction_count_loop_answers_every_request(target):
    """The loop valgrind counts serves real 200 responses (it exits non-zero on any other)."""
    import subprocess

    done = subprocess.run([sys.executable, str(INSTRUCTIONS), "--child", target, "200"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_instruction_count_loop_refuses_a_wrong_response(monkeypatch):
    import asyncio

    import instructions

    async def broken_factory(target):
        class Protocol:
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                self.transport.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")

        return Protocol

    monkeypatch.setattr(instructions, "make_protocol", broken_factory)
    with pytest.raises(SystemExit, match="unexpected response"):
        asyncio.run(instructions.serve("asyncworker-asgi", 3))
