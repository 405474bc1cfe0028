"""The benchmark suite's tools: measuring (load.py, on real sockets and real wrk output), the cases
(cases.py: the request wrk sends is the one the check sends, right and wrong answers), the apps'
answers, the ratios and targets (report.py), the strace summary (syscalls.py)."""

import socket
import subprocess
import sys
import threading
import time
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

    for what in ("/", "/chunked", "resp-100KiB", "browser"):
        done = subprocess.run([sys.executable, str(INSTRUCTIONS), "--child", target, "200", what],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (what, done.stderr)


@pytest.mark.parametrize("target", ["asyncworker-asgi", "asyncworker-native", "asyncworker-wsgi"])
def test_instruction_count_loop_answers_on_a_new_connection_each_time(target):
    """--close: each request on a connection made for it (its bytes read at accept) and
    lost after the answer (it exits non-zero on any answer but a 200)."""
    import subprocess

    done = subprocess.run([sys.executable, str(INSTRUCTIONS), "--child", target, "200", "/", "1", "0", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("keep_alive", [False, True])
@pytest.mark.parametrize("case, line", [("hello", '"GET / HTTP/1.1" 200'), ("chunked", '"GET /chunked HTTP/1.1" 200'),
                                        ("browser", '"GET / HTTP/1.1" 200')])
def test_the_whole_worker_count_sends_requests_a_real_worker_answers(keep_alive, case, line):
    """worker_instructions.py's client (without valgrind): a case's requests one after another,
    each on a new connection or all on one, each answer read to its end (its Content-Length,
    or its last chunk) before the next request; an answer that is not a whole 200 fails it."""
    import worker_instructions
    from helpers import Gunicorn, wait_until

    apps = Path(__file__).resolve().parents[2] / "benchmarks" / "apps"
    with Gunicorn("hello:application", "--access-logfile", "-", chdir=str(apps)) as server:
        sock = worker_instructions.send_requests(server.port, 20, keep_alive, None, case)
        assert (sock is not None) == keep_alive
        if sock is not None:
            sock.close()
        wait_until(lambda: server.log_text().count(line) == 20, 5, what="20 requests logged")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as other:
            other.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")  # (a 400)
            with pytest.raises(RuntimeError, match="unexpected answer"):
                worker_instructions.read_answer(other, until_eof=True)


def test_the_whole_worker_count_knows_a_whole_answer():
    """whole_answer: a head and its Content-Length's bytes, or a chunked body's last chunk."""
    import worker_instructions

    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert worker_instructions.whole_answer(head + b"hello")
    assert not worker_instructions.whole_answer(head + b"hell")
    assert not worker_instructions.whole_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n"
    assert not worker_instructions.whole_answer(chunked)
    assert worker_instructions.whole_answer(chunked + b"0\r\n\r\n")


@pytest.mark.parametrize("keep_alive", [False, True])
def test_the_whole_worker_count_keeps_connections_busy_at_once(keep_alive):
    """--connections N: N connections at once, each sending its next request when its answer
    is read, until every request is answered (on the same connections, or on new ones)."""
    import worker_instructions
    from helpers import Gunicorn

    apps = Path(__file__).resolve().parents[2] / "benchmarks" / "apps"
    with Gunicorn("hello:application", "--access-logfile", "-", chdir=str(apps)) as server:
        worker_instructions.send_concurrently(server.port, 37, keep_alive, 5)
        server.stop()  # (a graceful stop: whatever was sent is answered and logged first)
        assert server.log_text().count('"GET / HTTP/1.1" 200') == 37


def test_the_whole_worker_count_sends_a_new_connections_request_late():
    """--late S: a new connection's request comes S seconds after its connect, which the
    server has accepted by then (here at once: it waits in accept)."""
    import worker_instructions

    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    waited = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve():
            for _ in range(4):
                conn, _ = listener.accept()
                accepted, data = time.monotonic(), b""
                with conn:
                    while not data.endswith(b"\r\n\r\n"):
                        data += conn.recv(65536)
                    waited.append(time.monotonic() - accepted)
                    conn.sendall(answer)

        thread = threading.Thread(target=serve)
        thread.start()
        worker_instructions.send_concurrently(listener.getsockname()[1], 4, False, 1, late=0.2)
        thread.join(5)
    assert len(waited) == 4 and min(waited) >= 0.15, waited


def test_the_whole_worker_count_gives_up_on_a_server_that_never_answers(monkeypatch):
    """A server that takes the requests and answers nothing ends the run with an error after
    ANSWER_TIMEOUT, not a wait without end."""
    import worker_instructions

    monkeypatch.setattr(worker_instructions, "ANSWER_TIMEOUT", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # (connections wait in its queue)
        with pytest.raises(RuntimeError, match=r"no answer for 0.3s \(0 of 4 answered\)"):
            worker_instructions.send_concurrently(silent.getsockname()[1], 4, True, 2)


def test_the_whole_worker_count_gives_misses_per_request_with_the_cache_simulated():
    """per_request: the difference of two runs' totals over the requests between them; D1 and
    LL misses only when the cache was simulated."""
    import worker_instructions

    low = {"Ir": 1000, "I1mr": 1, "ILmr": 1, "Dr": 10, "D1mr": 5, "DLmr": 1, "Dw": 10, "D1mw": 5, "DLmw": 0}
    high = {"Ir": 3000, "I1mr": 1, "ILmr": 3, "Dr": 10, "D1mr": 25, "DLmr": 3, "Dw": 10, "D1mw": 25, "DLmw": 4}
    assert worker_instructions.per_request(low, high, 10) == {"Ir": 200, "D1": 4, "LL": 0.8}
    assert worker_instructions.per_request({"Ir": 1000}, {"Ir": 3000}, 10) == {"Ir": 200}


def test_the_whole_worker_count_gives_the_median_of_repeated_counts_and_their_range(capsys):
    import worker_instructions

    counts = [{"Ir": 59_000.4}, {"Ir": 57_500}, {"Ir": 61_200}, {"Ir": 58_000}]
    assert worker_instructions.median_cost(counts) == ({"Ir": 58_000}, "   (57,500 to 61,200, 4 counts)")
    assert worker_instructions.median_cost(counts[:3]) == ({"Ir": 59_000.4}, "   (57,500 to 61,200, 3 counts)")
    assert worker_instructions.median_cost(counts[:1]) == ({"Ir": 59_000.4}, "")
    with pytest.raises(SystemExit):
        worker_instructions.main(["--no-install", "--repeat", "0"])
    assert "--repeat must be at least 1" in capsys.readouterr().err


def test_the_whole_worker_count_refuses_fewer_keep_alive_requests_than_connections(capsys):
    """Each run opens as many connections as it has requests, up to --connections: a first run
    with fewer requests than connections opens fewer, and the difference would count the
    other connections' set-ups as requests. Refused before any server starts."""
    import worker_instructions

    with pytest.raises(SystemExit):
        worker_instructions.main(["--no-install", "--keep-alive", "--connections", "1000", "--requests", "300,1300"])
    assert "--requests n1 must be at least --connections with --keep-alive (n1 300 < 1000)" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["asyncworker-asgi", "asyncworker-native", "asyncworker-wsgi"])
def test_instruction_count_loop_answers_over_http2(target):
    """--http2: the same loop over one HTTP/2 connection, 100 streams per read (it exits non-zero
    when a read's answers hold no hello, or the connection closed)."""
    import subprocess

    pytest.importorskip("h2")
    done = subprocess.run([sys.executable, str(INSTRUCTIONS), "--child", target, "300", "/", "1", "100"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_instruction_count_http2_client_sends_what_h2load_sends():
    """The counted client's bytes are requests to an HTTP/2 server: three streams, h2load's fields."""
    h2_connection = pytest.importorskip("h2.connection")
    import h2.config
    import h2.events
    import instructions

    client = instructions.H2Client()
    server = h2_connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    events = server.receive_data(client.opening() + client.requests(3))
    requests = [e for e in events if isinstance(e, h2.events.RequestReceived)]
    assert [e.stream_id for e in requests] == [1, 3, 5]
    assert all(e.headers == instructions.H2_FIELDS and e.stream_ended for e in requests)
    assert server.local_flow_control_window(1) == instructions.H2_WINDOW  # (the client's windows)
    assert server.outbound_flow_control_window == instructions.H2_WINDOW


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


def test_instruction_count_sees_the_end_of_a_sized_or_chunked_answer():
    import instructions

    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    assert not instructions.complete([head, b"01234"], "length")
    assert instructions.complete([head, b"01234", b"56789"], "length")
    assert not instructions.complete([b"HTTP/1.1 200 OK\r\nContent-"], "length")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    assert not instructions.complete([chunked], "length")
    assert instructions.complete([chunked, b"0\r\n\r\n"], "length")
    request, ending = instructions.request_of("browser")
    assert ending == "first" and request.count(b"\r\n") == 2 + 15  # request line, 15 fields, blank line


# --- benchmarks/cases.py: what each case sends and accepts -----------------------------------

import cases  # noqa: E402


def record_one_request(listening) -> dict:
    """Accept one connection, read one request whole, answer 200; the request's parts."""
    seen = {}

    def serve():
        data = b""
        while b"\r\n\r\n" not in data:  # wrk first opens and closes one connection: skip it
            conn, _ = listening.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    conn.close()
                    break
                data += piece
        with conn:
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            fields = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
            length = int(dict((k.lower(), v) for k, v in fields).get("content-length", 0))
            while len(body) < length:
                body += conn.recv(65536)
            seen.update(line=lines[0], fields=fields, body=body)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return seen, thread


@pytest.mark.skipif(not __import__("shutil").which("wrk"), reason="wrk not installed")
@pytest.mark.parametrize("name", ["browser", "form-4KiB", "echo-1MiB-c10", "hello-close"])
def test_wrk_sends_the_request_the_check_sends(listening, name):
    """The Lua script of a case makes wrk send what the check sends: method, header fields, body."""
    import subprocess

    case = cases.BY_NAME[name]
    method, path, headers, body = case.request()
    seen, thread = record_one_request(listening)
    script = load.write_script(case.script())
    try:
        subprocess.run(["wrk", "-t1", "-c1", "-d1s", "-s", script,
                        f"http://127.0.0.1:{listening.getsockname()[1]}{path}"],
                       capture_output=True, timeout=30)
    finally:
        import os
        os.unlink(script)
    thread.join(10)
    assert seen["line"] == f"{method} {path} HTTP/1.1"
    sent = {k.lower(): v for k, v in seen["fields"]}
    for name_, value in headers:
        assert sent[name_.lower()] == value
    assert seen["body"] == body
    if name == "browser":
        assert len(seen["fields"]) == 15 and len(sent["cookie"].split(";")) == 4


def test_the_form_is_4_kib_and_parsed_as_the_apps_parse_it():
    body = cases.form_body()
    assert len(body) == 4096
    fields, chars = cases.form_answer(body).split()
    assert int(fields) == len(cases.FORM_FIELDS) + 1  # the message
    assert b"%C3%A9" in body and b"+" in body  # escapes and spaces to decode


def test_lua_strings_escape_what_lua_would_read_otherwise():
    assert cases.lua_string(b'a"b\\c\n') == '"a\\034b\\092c\\010"'
    assert cases.lua_string("é".encode()) == '"\\195\\169"'


@pytest.mark.parametrize("name,status,headers,body,wrong", [
    ("hello", 200, {}, b"Hello, world!\n", ""),
    ("hello", 200, {}, b"Hello", "body"),
    ("hello", 500, {}, b"Hello, world!\n", "status 500"),
    ("chunked", 200, {}, b"x" * 65536, ""),
    ("chunked", 200, {"content-length": "65536"}, b"x" * 65536, "Content-Length"),
    ("resp-100KiB", 200, {"content-length": "102400"}, cases.response_100k(), ""),
    ("resp-100KiB", 200, {}, cases.response_100k(), "Content-Length"),
    ("echo-1MiB-c10", 200, {}, b"1048576\n", ""),
    ("echo-1MiB-c10", 200, {}, b"1048575", "body"),
    ("form-4KiB", 200, {}, cases.form_answer(cases.form_body()), ""),
    ("form-4KiB", 200, {}, b"13 0", "body"),
])
def test_an_answer_is_checked_against_its_case(name, status, headers, body, wrong):
    problem = cases.BY_NAME[name].verify("wsgi", status, headers, body)
    assert (problem == "") if not wrong else (wrong in problem)


def test_a_file_answer_must_be_the_file_whole():
    case = cases.BY_NAME["file-10MiB"]
    content = cases.file_content()
    assert case.verify("asgi", 200, {"content-length": str(len(content))}, content) == ""
    damaged = content[:-1] + b"\0"
    assert "body" in case.verify("asgi", 200, {"content-length": str(len(content))}, damaged)


# --- benchmarks/apps: the WSGI and ASGI apps answer what the cases expect --------------------

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "apps"))


def wsgi_answer(case, monkeypatch, file_path) -> tuple:
    import io

    import hello
    monkeypatch.setenv(cases.FILE_ENV, file_path)
    method, path, headers, body = case.request()
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    started = {}

    def start_response(status, fields):
        started.update(status=int(status.split()[0]), headers={k.lower(): v for k, v in fields})
    result = hello.application(environ, start_response)
    answer = b"".join(result)
    getattr(result, "close", lambda: None)()
    return started["status"], started["headers"], answer


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    return cases.make_file(str(tmp_path_factory.mktemp("bench")))


@pytest.mark.parametrize("name", [c.name for c in cases.CASES])
def test_the_wsgi_app_answers_every_case_rightly(name, monkeypatch, bench_file):
    case = cases.BY_NAME[name]
    status, headers, body = wsgi_answer(case, monkeypatch, bench_file)
    if case.path == "/chunked":
        assert "content-length" not in headers
    assert case.verify("wsgi", status, headers, body) == ""
    if case.path == "/file":
        assert headers[cases.PATH_HEADER] == "blocks"  # no wsgi.file_wrapper in this environ


@pytest.mark.parametrize("pathsend", [True, False])
@pytest.mark.parametrize("name", [c.name for c in cases.CASES if "asgi" in c.kinds])
def test_the_asgi_app_answers_every_case_rightly(name, pathsend, monkeypatch, bench_file):
    import asyncio

    import asgi_hello
    monkeypatch.setenv(cases.FILE_ENV, bench_file)
    case = cases.BY_NAME[name]
    method, path, headers, body = case.request()
    scope = {"type": "http", "method": method, "path": path,
             "extensions": {"http.response.pathsend": {}} if pathsend else {}}
    messages = [{"type": "http.request", "body": body[:1000], "more_body": True},
                {"type": "http.request", "body": body[1000:], "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)
    asyncio.run(asgi_hello.app(scope, receive, send))
    start = sent[0]
    fields = {k.decode(): v.decode() for k, v in start["headers"]}
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    if pathsend and case.path == "/file":
        assert fields[cases.PATH_HEADER] == "pathsend" and sent[-1]["path"] == bench_file
        answer = Path(sent[-1]["path"]).read_bytes()
    elif case.path == "/file":
        assert fields[cases.PATH_HEADER] == "body"
        assert max(len(m["body"]) for m in sent[1:]) == 65536
    assert case.verify("asgi", start["status"], fields, answer) == ""


# --- benchmarks/report.py: ratios and targets ------------------------------------------------

import report  # noqa: E402

KINDS = {"asyncworker": "wsgi", "gthread": "wsgi", "waitress": "wsgi", "granian": "wsgi",
         "asyncworker-asgi": "asgi", "uvicorn": "asgi", "hypercorn": "asgi", "granian-asgi": "asgi",
         "asyncworker-native": "native", "aiohttp": "native"}


def runs_of(case: str, rps: dict) -> list:
    """``rps``: target -> req/s per round."""
    return [{"case": case, "target": t, "round": i + 1, "rps": r, "p50_ms": 1.0, "p99_ms": 2.0,
             "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "non2xx": 0}
            for t, rounds in rps.items() for i, r in enumerate(rounds)]


def test_ratios_are_medians_of_rounds_paired_in_time():
    # round 2 is slow for both: paired, the ratio stays 2x; unpaired medians would say 2x too,
    # but a round the reference lacks must not count
    res = report.Results(runs_of("chunked", {"asyncworker": [200, 100, 220, 999],
                                             "granian": [100, 50, 100]}), KINDS)
    value, same = res.vs_granian("chunked", "asyncworker")
    assert value == pytest.approx(2.0) and same


def test_best_pure_python_peer_is_the_one_the_ratio_is_lowest_against():
    res = report.Results(runs_of("resp-100KiB", {"asyncworker-asgi": [300, 300, 300], "uvicorn": [200, 200, 200],
                                                 "hypercorn": [250, 100, 400]}), KINDS)
    value, peer, same = res.vs_pure_python("resp-100KiB", "asyncworker-asgi")
    assert (peer, same) == ("hypercorn", True) and value == pytest.approx(1.2)
    # a peer's own row is compared with the others, not with itself
    assert res.vs_pure_python("resp-100KiB", "uvicorn")[1] == "hypercorn"


def test_native_rows_compare_with_granian_asgi_marked_as_another_kind():
    res = report.Results(runs_of("chunked", {"asyncworker-native": [150], "granian-asgi": [100],
                                             "aiohttp": [100]}), KINDS)
    value, same = res.vs_granian("chunked", "asyncworker-native")
    assert value == pytest.approx(1.5) and not same
    assert report.ratio_text(value, same) == "1.50x*"


def test_a_hello_row_takes_its_reference_from_the_hello_group():
    runs = runs_of("asgi-hello", {"asyncworker-asgi": [130]}) + runs_of("hello", {"gthread": [100]})
    res = report.Results(runs, KINDS)
    value, same = res.ratio("asgi-hello", "asyncworker-asgi", "gthread")
    assert value == pytest.approx(1.3) and not same
    assert res.ratio("form-4KiB", "asyncworker", "gthread") == (None, True)  # no group: nothing


def goal(checks, what):
    return next(c for c in checks if c[0] == what)


def test_every_case_has_a_granian_and_a_pure_python_target_per_kind():
    runs = (runs_of("form-4KiB", {"asyncworker": [99], "granian": [100], "gthread": [50], "waitress": [98],
                                  "asyncworker-asgi": [100], "granian-asgi": [100], "uvicorn": [100],
                                  "asyncworker-native": [200], "aiohttp": [100]}))
    checks = report.goals(report.Results(runs, KINDS), {}, [cases.BY_NAME["form-4KiB"]])
    assert goal(checks, "form-4KiB WSGI >= 1.0x granian")[2] is False  # 0.99x
    assert goal(checks, "form-4KiB WSGI > every pure-Python peer") == (
        "form-4KiB WSGI > every pure-Python peer", "1.010x waitress", True)
    assert goal(checks, "form-4KiB ASGI >= 1.0x granian-asgi")[2] is True  # at 1.0x: passes
    assert goal(checks, "form-4KiB ASGI > every pure-Python peer")[2] is False  # equal: not above
    assert goal(checks, "form-4KiB native > every pure-Python peer")[2] is True
    assert not any(c[0].startswith("form-4KiB native >= 1.0x") for c in checks)  # granian serves no native app


def test_a_target_not_measured_is_na_not_a_pass():
    checks = report.goals(report.Results(runs_of("chunked", {"asyncworker": [100]}), KINDS), {},
                          [cases.BY_NAME["chunked"]])
    assert goal(checks, "chunked WSGI >= 1.0x granian")[2] is None
    assert goal(checks, "chunked ASGI: this worker measured")[2] is None
    assert goal(checks, "ASGI hello >= 1.3x uvicorn worker") == ("ASGI hello >= 1.3x uvicorn worker", "n/a", None)


def test_the_hello_goals_keep_their_lines():
    runs = (runs_of("asgi-hello", {"asyncworker-asgi": [129, 131, 131], "uvicorn": [100, 100, 100]})
            + runs_of("native-hello", {"asyncworker-native": [149], "aiohttp": [100]}))
    checks = report.goals(report.Results(runs, KINDS), {})
    assert goal(checks, "ASGI hello >= 1.3x uvicorn worker")[1:] == ("1.310x", True)
    assert goal(checks, "native hello >= 1.5x aiohttp web")[1:] == ("1.490x", False)


def test_the_table_shows_both_ratios_and_why_a_row_did_not_run():
    runs = runs_of("file-10MiB", {"asyncworker-asgi": [30], "granian-asgi": [60], "uvicorn": [20]})
    lines = report.table(report.Results(runs, KINDS), [cases.BY_NAME["file-10MiB"]],
                         [("asyncworker-asgi", "asgi", ""), ("granian-asgi", "asgi", ""), ("uvicorn", "asgi", ""),
                          ("hypercorn", "asgi", "cannot import hypercorn")],
                         {}, {("file-10MiB", "asyncworker-asgi"): "pathsend"}, None)
    mine = next(line for line in lines if "asyncworker-asgi" in line)
    assert "0.50x" in mine and "1.50x uvicorn" in mine and mine.endswith("pathsend")
    assert "(cannot import hypercorn)" in next(line for line in lines if "hypercorn" in line)


# --- benchmarks/syscalls.py: strace -c's table, per request ----------------------------------

STRACE_C = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 35.50    0.000131          65         2         2 statx
 29.00    0.000107           2        39        19 openat
 13.28    0.000049           1        30           mmap
  3.79    0.000014           3         4           write
  0.00    0.000000           0         1           rseq
------ ----------- ----------- --------- --------- ----------------
100.00    0.000369           2        76        21 total
"""


def test_strace_summary_is_parsed_per_call_without_the_total():
    import syscalls

    calls = syscalls.parse_strace_summary(STRACE_C)
    assert calls == {"statx": (2, 2), "openat": (39, 19), "mmap": (30, 0), "write": (4, 0), "rseq": (1, 0)}
    r = syscalls.per_request(calls, 2, {"in": 200, "out": 4000, "no_copy": 0}, top=2)
    assert r["syscalls_per_request"] == 38 and r["errors_per_request"] == 10.5
    assert r["top"] == [("openat", 19.5), ("mmap", 15.0)]
    assert (r["bytes_in_per_request"], r["bytes_out_per_request"]) == (100, 2000)
    with pytest.raises(ValueError):
        syscalls.per_request(calls, 0, {"in": 0, "out": 0, "no_copy": 0})


STRACE_TRACE = """\
7404  read(3, ""..., 4096)              = 2996
7404  read(3, "", 4096)                 = 0
7405  recvfrom(9, ""..., 65536, 0, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable)
7405  recvfrom(9,  <unfinished ...>
7406  writev(10, [{iov_base=""..., iov_len=120}], 1) = 120
7405  <... recvfrom resumed>""..., 65536, 0, NULL, NULL) = 4000
7406  sendfile(10, 11, [0] => [1048576], 1048576) = 1048576
7406  epoll_wait(4, [], 1024, 0)        = 0
7406  futex(0x7f, FUTEX_WAKE_PRIVATE, 1) = 1
 35.50    0.000131          65         2         2 statx
"""


def test_bytes_moved_counts_results_of_data_calls_once():
    import syscalls

    assert syscalls.bytes_moved(STRACE_TRACE) == {"in": 2996 + 4000, "out": 120, "no_copy": 1048576}


def test_pairs_alternate_which_build_goes_first_and_ratio_each_round():
    import pairs

    assert [pairs.round_order(i) for i in range(4)] == [(0, 1), (1, 0), (0, 1), (1, 0)]
    assert pairs.paired_ratios([100.0, 200.0, 0.0], [110.0, 180.0, 50.0]) == [1.1, 0.9]


def test_pairs_rounds_alternate_and_refuse_a_run_with_errors():
    import pairs

    calls = []

    def one_run(which):
        calls.append(which)
        return 100.0 * (which + 1) + len(calls), 0

    rates = pairs.run_rounds(2, one_run)
    assert calls == [0, 1, 1, 0]
    assert rates == [[101.0, 104.0], [202.0, 203.0]]
    with pytest.raises(RuntimeError, match="after: 3 errors"):
        pairs.run_rounds(1, lambda which: (1.0, 3 * which))


def test_pairs_checks_out_a_revision_with_its_extension_built(tmp_path):
    """The "before" tree is a worktree of the revision, built, and gone afterwards."""
    import pairs

    tree = str(tmp_path / "before")
    try:
        pairs.checkout("HEAD", tree)
        assert (Path(tree) / "server" / "protocol" / "server.py").is_file()
        assert list((Path(tree) / "server" / "protocol").glob("_chead*.so"))
    finally:
        pairs.remove_checkout(tree)
    assert not Path(tree).exists()
    listed = subprocess.run(["git", "-C", pairs.peers.REPO, "worktree", "list"], capture_output=True, text=True)
    assert tree not in listed.stdout


def test_http2_suite_stop_ends_each_servers_process_group():
    """pairs.py --http2 and http2_suite.py stop their servers (a master and its worker) this way."""
    import subprocess

    import http2_suite

    procs = [subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True) for _ in range(2)]
    http2_suite.stop(procs)
    assert all(proc.poll() is not None for proc in procs)


@pytest.mark.skipif(not __import__("shutil").which("wrk"), reason="wrk not installed")
def test_the_suite_measures_each_case_on_servers_started_for_it():
    """What one case leaves in a server (granian's WSGI threads after c=1000) must not count in
    another case's figures: each case's rounds run on a worker started for that case."""
    import argparse

    import peers
    import suite

    target, = peers.make_targets(["asyncworker"], sys.executable, peers.APPS_DIR)
    restart = suite.restarter(peers.APPS_DIR, [], {})
    workers = []

    def restart_and_record(targets):
        ready = restart(targets)
        workers.append([t.worker_pid() for t in ready])
        return ready

    try:
        assert suite.boot([target], peers.APPS_DIR, []) == [target]
        first = target.worker_pid()
        pairs = [(cases.BY_NAME["hello"], target), (cases.BY_NAME["hello-close"], target)]
        args = argparse.Namespace(warmup=0, rounds=2, duration=1, probes=1)
        runs = suite.measure(pairs, args, [], None, restart_and_record)
    finally:
        peers.stop(target)
    assert len(workers) == 2 and None not in workers[0] + workers[1]
    assert len({first, workers[0][0], workers[1][0]}) == 3
    assert [(r["case"], r["round"]) for r in runs] == [("hello", 1), ("hello", 2), ("hello-close", 1),
                                                       ("hello-close", 2)]
    assert all(r["rps"] > 0 for r in runs)
