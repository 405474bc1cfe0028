"""Pipelining with bodies: 100 requests on one connection (GETs, Content-Length and chunked
POSTs) sent at once are answered in order with exact bodies; a bad request in the middle
of such a pipeline gets the good ones before it answered, then 400 and a close.
(test_timeouts.py covers the GET-only variants.)"""

import zlib

import pytest

from hardening_support import hardening_server, request
from helpers import connect, parse_responses, read_response, read_until_eof, send_and_close_write
from worker_support import hits


def chunked_post(path: str, body: bytes) -> bytes:
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]) if p)
    return request("POST", path, "Transfer-Encoding: chunked") + chunks + b"0\r\n\r\n"


def pipeline(n: int) -> tuple[bytes, list[bytes]]:
    """n requests of three kinds and the bodies /count-input or the path echo must answer."""
    data, expected = [], []
    for i in range(n):
        body = (b"%d-" % i) * (i * 37 % 500 + 1)
        kind = i % 3
        if kind == 0:
            data.append(request("GET", f"/p{i}"))
            expected.append(f"/p{i}".encode())
        elif kind == 1:
            data.append(request("POST", "/count-input", body=body))
            expected.append(f"{len(body)} {zlib.crc32(body)}".encode())
        else:
            data.append(chunked_post("/count-input", body))
            expected.append(f"{len(body)} {zlib.crc32(body)}".encode())
    return b"".join(data), expected


def test_100_pipelined_requests_with_bodies_in_order(tmp_path, figure):
    raw, expected = pipeline(100)
    with hardening_server(tmp_path) as server, connect(server.port, timeout=10) as sock:
        sock.sendall(raw)
        bodies = [read_response(sock).body for _ in expected]
        sock.sendall(request("GET", "/still-open"))
        last = read_response(sock)
    in_order = sum(b == e for b, e in zip(bodies, expected))
    figure("100 pipelined requests (GET, CL and chunked POST)", "answered exactly and in order", in_order,
           "of 100", "100")
    assert bodies == expected
    assert last.body == b"/still-open"


def test_bad_request_in_a_pipeline_with_bodies(tmp_path):
    good, expected = pipeline(6)
    bad = request("POST", "/bad", "Content-Length: 5", "Content-Length: 6") + b"hello!"
    after = request("GET", "/after")
    with hardening_server(tmp_path) as server, connect(server.port, timeout=10) as sock:
        sock.sendall(good + bad + after)
        data, closed = read_until_eof(sock, 10)
    responses = parse_responses(data)
    assert [r.status for r in responses] == [200] * 6 + [400], data[-500:]
    assert [r.body for r in responses[:6]] == expected
    assert closed
    seen = hits(tmp_path)
    assert "/bad" not in seen and "/after" not in seen and len(seen) == 6, seen


def test_pipelined_requests_then_half_close_are_all_answered(tmp_path):
    with hardening_server(tmp_path) as server:
        data = send_and_close_write(server.port, request("GET", "/one") + request("GET", "/two"))
    assert [r.body for r in parse_responses(data)] == [b"/one", b"/two"]
