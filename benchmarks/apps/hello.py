"""The WSGI app of the benchmark suite: one app, three routes.

- ``/`` (any other path): ``Hello, world!\\n`` with its Content-Length;
- ``/chunked``: 16 pieces of 4 KiB from a generator, no Content-Length (the
  server frames it: chunked for HTTP/1.1);
- ``/echo``: reads the whole request body and answers its length in decimal.
"""

BODY = b"Hello, world!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
CHUNK = b"x" * 4096
CHUNKS = 16


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/chunked":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks()
    if path == "/echo":
        return _echo(environ, start_response)
    start_response("200 OK", list(HEADERS))
    return [BODY]


def _chunks():
    for _ in range(CHUNKS):
        yield CHUNK


def _echo(environ, start_response):
    stream = environ["wsgi.input"]
    left = int(environ.get("CONTENT_LENGTH") or 0)
    size = 0
    while left > 0:
        block = stream.read(min(left, 65536))
        if not block:
            break
        size += len(block)
        left -= len(block)
    body = str(size).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
