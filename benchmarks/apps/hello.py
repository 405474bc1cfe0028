"""Minimal WSGI hello-world app used by benchmarks/bench_wsgi.py."""

BODY = b"Hello, world!\n"
HEADERS = [
    ("Content-Type", "text/plain"),
    ("Content-Length", str(len(BODY))),
]


def application(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return [BODY]
