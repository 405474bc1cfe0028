"""An HTTP/2 stream leaves nothing for the garbage collector once answered: the stream and its
app kind's object held each other, so every stream's head, fields and framing waited for a
collection (about a seventh of the worker's time under h2load); so did a stream with a request
body and its body's sink, rate and idle timer (their callbacks are the stream's)."""

import asyncio

import pytest

from h2_client import H2Client
from h2_support import H2, H2C
from helpers import Gunicorn

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

STREAMS = 50


async def streams_left(port: int, method: str, path: str, body) -> int:
    client = await H2Client.connect(port)
    try:
        assert (await client.request("GET", "/gc-off"))[1] == b"off"
        for _ in range(STREAMS):
            assert (await client.request(method, path, body))[0] == 200
        return int((await client.request("GET", "/gc-left?type=H2Stream"))[1])
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
@pytest.mark.parametrize("method, body", [("GET", None), ("POST", b"x" * 4096)], ids=["get", "post-body"])
def test_answered_streams_leave_nothing_for_the_collector(kind, method, body):
    path = "/read" if kind == "asgi" and body else "/"  # (the ASGI app reads the body there)
    with Gunicorn(f"gc_apps:{kind}_app", *H2, *H2C, threads=2, env={"ASYNCWORKER_APP_KIND": kind}) as server:
        left = asyncio.run(streams_left(server.port, method, path, body))
    assert left <= 3, f"{left} streams wait for the garbage collector after {STREAMS}"
