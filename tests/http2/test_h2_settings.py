"""gunicorn's settings on HTTP/2 connections: the access log (one line per stream), keepalive
(an idle connection gets GOAWAY), the graceful stop (GOAWAY naming the last stream, which
finishes), http2_max_concurrent_streams, limit_request_fields, and gunicorn's request hooks."""

import asyncio
import signal
import time

import h2.errors
import h2.events
import pytest
from hyperframe.frame import GoAwayFrame

from h2_client import H2Client
from h2_support import h2_server
from helpers import wait_until

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")


def run(coro, timeout: float = 30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_access_log_has_one_line_per_stream_with_http2(kind, tmp_path):
    log = tmp_path / "access.log"
    with h2_server(kind, "--access-logfile", str(log), "--access-logformat", "%(H)s|%(r)s|%(s)s|%(b)s") as server:
        async def three():
            client = await H2Client.connect(server.port)
            results = await asyncio.gather(*[client.request("GET", f"/?n={i}") for i in range(3)])
            await client.close()
            return results

        results = run(three())
        lines = wait_until(lambda: log.read_text().splitlines() if log.exists() and
                           len(log.read_text().splitlines()) >= 3 else None, 10, what="three log lines")
    assert [status for status, _, _ in results] == [200] * 3
    assert sorted(lines) == sorted(f"HTTP/2.0|GET /?n={i} HTTP/2.0|200|{len(results[i][1])}" for i in range(3))


def test_an_idle_connection_is_closed_after_keepalive_with_goaway():
    with h2_server("wsgi", "--keep-alive", "1") as server:
        async def idle():
            client = await H2Client.connect(server.port)
            status, _, _ = await client.request("GET", "/")
            answered = time.monotonic()
            await asyncio.sleep(0.5)
            open_at_half = not client.closed.is_set()
            await asyncio.wait_for(client.closed.wait(), 5)
            return status, open_at_half, time.monotonic() - answered, client.terminated

        status, open_at_half, idle_for, goaway = run(idle())
    assert status == 200 and open_at_half
    assert 0.9 <= idle_for < 4
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_client_goaway_lets_its_streams_in_flight_finish_then_the_connection_closes(kind, tmp_path):
    """A client that sends GOAWAY (NO_ERROR) while its requests run still gets their answers
    (RFC 9113 s6.8; h2load does this at the end of every run); no new stream is taken, and
    the server closes once they are done. h2's state machine refuses to send anything after
    any GOAWAY: the app's response failed and was logged as an app error."""
    starts = tmp_path / "starts"
    starts.touch()
    with h2_server(kind, env={"H2_STARTS_FILE": str(starts)}) as server:
        async def goaway_during_requests():
            client = await H2Client.connect(server.port)
            pending = [asyncio.ensure_future(client.request("GET", "/sleep?s=1")) for _ in range(3)]
            while len(starts.read_text().split()) < 3:  # (the three apps are running)
                await asyncio.sleep(0.01)
            client.writer.write(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
            results = await asyncio.gather(*pending)
            await asyncio.wait_for(client.closed.wait(), 5)
            return results, client.terminated

        results, goaway = run(goaway_during_requests())
        log = server.log_text()
    assert [(status, body) for status, body, _ in results] == [(200, b"slept")] * 3
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert "Error" not in log and "Traceback" not in log, log


def test_graceful_stop_sends_goaway_and_lets_the_streams_in_flight_finish():
    with h2_server("wsgi", "--graceful-timeout", "10") as server:
        async def stop_during_a_request():
            client = await H2Client.connect(server.port)
            slow = asyncio.ensure_future(client.request("GET", "/sleep?s=1.5"))
            await asyncio.sleep(0.5)
            server.signal(signal.SIGTERM)
            status, body, _ = await slow
            await asyncio.wait_for(client.closed.wait(), 5)
            return status, body, client.terminated

        status, body, goaway = run(stop_during_a_request())
    assert (status, body) == (200, b"slept")
    assert goaway is not None and goaway.last_stream_id == 1
    assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR


def test_max_concurrent_streams_is_advertised_and_enforced():
    with h2_server("asgi", "--http2-max-concurrent-streams", "2") as server:
        async def three_at_once():
            client = await H2Client.connect(server.port)
            # Sent before the server's SETTINGS are read: the client does not know the limit yet.
            results = await asyncio.gather(*[client.request("GET", "/sleep?s=0.5") for _ in range(3)],
                                           return_exceptions=True)
            advertised = client.conn.remote_settings.max_concurrent_streams
            await client.close()
            return advertised, results

        advertised, results = run(three_at_once())
    assert advertised == 2
    served = [r for r in results if not isinstance(r, BaseException)]
    assert len(served) < 3


def test_limit_request_fields_and_field_size_bound_a_stream_head():
    with h2_server("wsgi", "--limit-request-fields", "20", "--limit-request-field_size", "1000") as server:
        async def heads():
            client = await H2Client.connect(server.port)
            few = await client.request("GET", "/", headers=[(f"x-h{i}", "v") for i in range(15)])
            many = await client.request("GET", "/", headers=[(f"x-h{i}", "v") for i in range(40)])
            large = await client.request("GET", "/", headers=[("x-large", "v" * 1200)])
            fits = await client.request("GET", "/", headers=[("x-large", "v" * 900)])
            await client.close()
            return few[0], many[0], large[0], fits[0]

        assert run(heads()) == (200, 431, 431, 200)


def test_host_and_cookies_as_http1_gives_them():
    with h2_server("wsgi") as server:
        async def one():
            client = await H2Client.connect(server.port)
            result = await client.request("GET", "/headers", headers=[("cookie", "a=1"), ("cookie", "b=2")])
            await client.close()
            return result

        status, body, _ = run(one())
    assert (status, body) == (200, b"localhost|a=1; b=2")


HOOKS = '''
def pre_request(worker, req):
    with open({log!r}, "a") as f:
        f.write(f"pre {{req.method}} {{req.path}}\\n")

def post_request(worker, req, environ, resp):
    with open({log!r}, "a") as f:
        f.write(f"post {{req.path}} {{resp.status_code}} {{environ['SERVER_PROTOCOL']}}\\n")
'''


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_request_hooks_run_around_each_stream(kind, tmp_path):
    log, conf = tmp_path / "hooks.log", tmp_path / "hooks.conf.py"
    conf.write_text(HOOKS.format(log=str(log)))
    with h2_server(kind, "-c", str(conf)) as server:
        async def two():
            client = await H2Client.connect(server.port)
            await asyncio.gather(client.request("GET", "/a"), client.request("GET", "/b"))
            await client.close()

        run(two())
        lines = wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 4 and
                           log.read_text().splitlines(), 10, what="the hooks of both streams")
    assert sorted(lines) == ["post /a 200 HTTP/2.0", "post /b 200 HTTP/2.0", "pre GET /a", "pre GET /b"]


@pytest.mark.parametrize("kind", ["wsgi", "native"])
def test_files_are_sent_by_blocks_exact(kind, tmp_path):
    path = tmp_path / "file.bin"
    data = bytes(range(256)) * 40000 + b"end"
    path.write_bytes(data)
    with h2_server(kind) as server:
        async def get():
            client = await H2Client.connect(server.port)
            result = await client.request("GET", f"/file?path={path}")
            await client.close()
            return result

        status, body, headers = run(get())
    assert status == 200 and body == data
    assert dict(headers)[b"content-length"] == str(len(data)).encode()


def test_an_http2_connection_makes_room_at_worker_connections():
    """At worker_connections, a waiting client is taken once an HTTP/2 connection got GOAWAY."""
    with h2_server("wsgi", "--worker-connections", "1", "--keep-alive", "30") as server:
        async def two():
            first = await H2Client.connect(server.port)
            assert (await first.request("GET", "/"))[0] == 200
            second = await H2Client.connect(server.port)  # waits in the listen queue
            status = (await asyncio.wait_for(second.request("GET", "/"), 10))[0]
            await asyncio.wait_for(first.closed.wait(), 5)
            await second.close()
            return status, first.terminated

        status, goaway = run(two())
    assert status == 200
    assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR


def test_a_request_target_past_limit_request_line_is_refused():
    with h2_server("wsgi", "--limit-request-line", "100") as server:
        async def heads():
            client = await H2Client.connect(server.port)
            long = await client.request("GET", "/" + "a" * 200)
            fine = await client.request("GET", "/" + "a" * 50)
            await client.close()
            return long[0], fine[0]

        assert run(heads()) == (414, 200)


def test_max_requests_counts_streams():
    with h2_server("wsgi", "--max-requests", "3") as server:
        async def requests(n):
            client = await H2Client.connect(server.port)
            for _ in range(n):
                assert (await client.request("GET", "/"))[0] == 200
            await client.close()

        run(requests(2))
        time.sleep(0.5)
        assert "Autorestarting worker" not in server.log_text()
        run(requests(1))
        wait_until(lambda: "Autorestarting worker" in server.log_text(), 10, what="the restart")


@pytest.mark.parametrize("kind", ["wsgi", "native"])
def test_expect_100_continue_gets_an_informational_response(kind):
    with h2_server(kind) as server:
        async def expect():
            client = await H2Client.connect(server.port)
            sid = client.conn.get_next_available_stream_id()
            client.conn.send_headers(sid, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"),
                                           (":authority", "x"), ("expect", "100-continue"),
                                           ("content-length", "5")])
            client.flush()
            first = await asyncio.wait_for(client.events[sid].get(), 5)
            client.conn.send_data(sid, b"hello", end_stream=True)
            client.flush()
            status, body, _ = await client.response(sid)
            await client.close()
            return first, status, body

        first, status, body = run(expect())
    assert isinstance(first, h2.events.InformationalResponseReceived)
    assert dict(first.headers)[b":status"] == b"100"
    assert status == 200 and body.startswith(b"5 ")


def test_allowed_methods_answer_405_on_the_stream():
    with h2_server("wsgi", env={"ASYNCWORKER_ALLOWED_METHODS": "GET"}) as server:
        async def methods():
            client = await H2Client.connect(server.port)
            refused = await client.request("DELETE", "/")
            fine = await client.request("GET", "/")
            await client.close()
            return refused, fine[0]

        (status, _, headers), fine = run(methods())
    assert (status, fine) == (405, 200)
    assert dict(headers)[b"allow"] == b"GET"
