"""An HTTP/2 stream leaves nothing for the garbage collector once answered: the stream and its
app kind's object held each other, so every stream's head, fields and framing waited for a
collection (about a seventh of the worker's time under h2load)."""

import asyncio

import pytest

from h2_client import H2Client
from h2_support import H2, H2C
from helpers import Gunicorn

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

STREAMS = 50


async def streams_left(port: int) -> int:
    client = await H2Client.connect(port)
    try:
        assert (await client.request("GET", "/gc-off"))[1] == b"off"
        for _ in range(STREAMS):
            assert (await client.request("GET", "/"))[0] == 200
        return int((await client.request("GET", "/gc-left?type=H2Stream"))[1])
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_answered_streams_leave_nothing_for_the_collector(kind):
    with Gunicorn(f"gc_apps:{kind}_app", *H2, *H2C, threads=2, env={"ASYNCWORKER_APP_KIND": kind}) as server:
        left = asyncio.run(streams_left(server.port))
    assert left <= 3, f"{left} streams wait for the garbage collector after {STREAMS}"
