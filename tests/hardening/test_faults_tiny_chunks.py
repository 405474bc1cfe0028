"""Chunked bodies of 1-byte chunks (``1\\r\\nx\\r\\n`` 300,000 times) sent to handlers that
read nothing for a while, against a real worker, for every app kind (tests/apps/memory_apps.py):
the body buffers hold to their high-water mark in bytes of memory, whatever the chunking.
Before, each 1-byte piece carried a bytes object and a deque slot (and, for native apps, a
chunk boundary), so a buffer held to 256 KiB of payload cost 16-27 MiB per connection.
8 connections at once by default, 20 with ``HARDENING_LONG=1``; every body arrives exact.
"""

import threading
import zlib

import pytest

from hardening_support import MiB, RssSampler, is_asyncworker, request, scaled, the_worker
from helpers import Gunicorn, connect, read_response

pytestmark = pytest.mark.skipif(not is_asyncworker(), reason="the buffers are this worker's")

RSS_BOUND = 48 * MiB
CHUNKS = 300_000
CONNECTIONS = scaled(8, 20)
DELAY = scaled(8, 20)  # seconds the handler reads nothing: the buffers fill meanwhile
BODY = b"1\r\nx\r\n" * CHUNKS + b"0\r\n\r\n"
EXPECTED = f"{CHUNKS} {zlib.crc32(b'x' * CHUNKS)}".encode()
KINDS = {
    "asgi": ("memory_apps:asgi_app", {}),
    "native": ("memory_apps:web_app", {}),
    "wsgi-streamed": ("memory_apps:wsgi_app", {"ASYNCWORKER_READPAYLOAD": "0"}),
    "wsgi-spooled": ("memory_apps:wsgi_app", {}),
}
# Parsing 300,000 chunks takes the loop about 1.5 s a connection: on a loaded machine a
# connection paused at its mark may wait longer than the default 30 s idle body timeout.
ENV = {"ASYNCWORKER_BODY_TIMEOUT": "120"}


def upload(port: int, answers: list) -> None:
    """One client: the head and the body in large writes, then the answer."""
    try:
        with connect(port, timeout=DELAY + 60) as sock:
            sock.sendall(request("POST", f"/body?delay={DELAY}", "Transfer-Encoding: chunked") + BODY)
            answers.append(read_response(sock))
    except OSError as exc:
        answers.append(exc)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tiny_chunks_to_handlers_that_do_not_read_cost_bounded_memory(kind, figure):
    app, env = KINDS[kind]
    with Gunicorn(app, threads=CONNECTIONS, env={**ENV, **env}) as server:
        worker = the_worker(server)
        answers: list = []
        clients = [threading.Thread(target=upload, args=(server.port, answers)) for _ in range(CONNECTIONS)]
        with RssSampler(worker) as sampler:
            for client in clients:
                client.start()
            for client in clients:
                client.join(DELAY + 90)
        scenario = f"{kind}: {CONNECTIONS} bodies of {CHUNKS} 1-byte chunks, read after {DELAY} s"
        figure(scenario, "worker RSS growth", sampler.growth / MiB, "MiB", f"< {RSS_BOUND // MiB} MiB")
        assert len(answers) == CONNECTIONS, answers
        for answer in answers:
            assert not isinstance(answer, Exception), answer
            assert (answer.status, answer.body) == (200, EXPECTED), answer
        assert sampler.growth < RSS_BOUND, f"RSS grew by {sampler.growth / MiB:.1f} MiB"
