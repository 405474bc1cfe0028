"""WSGI apps for the response paths: framing, header checks, files, backpressure."""

import os
import tempfile
from urllib.parse import parse_qs

FILE_SIZE = 300_000
_FILE = os.path.join(tempfile.gettempdir(), f"response-apps-{os.getpid()}.bin")
with open(_FILE, "wb") as f:
    f.write(bytes(range(256)) * (FILE_SIZE // 256) + b"x" * (FILE_SIZE % 256))


def _params(environ) -> dict:
    return {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}


def short_body(environ, start_response):
    start_response("200 OK", [("Content-Length", "100")])
    return iter([b"only ten b"])


def long_body(environ, start_response):
    start_response("200 OK", [("Content-Length", "5")])
    return iter([b"12345", b"6789"])


def long_list(environ, start_response):
    start_response("200 OK", [("Content-Length", "5")])
    return [b"12345", b"6789"]


def bad_header(environ, start_response):
    start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
    return [b"should not be sent"]


def bad_header_name(environ, start_response):
    start_response("200 OK", [("X Bad", "v")])
    return [b"should not be sent"]


def hop_by_hop(environ, start_response):
    start_response("200 OK", [("Connection", "keep-alive")])
    return [b"should not be sent"]


def str_piece(environ, start_response):
    start_response("200 OK", [])
    return ["not bytes"] if _params(environ).get("alone") else [b"bytes, then ", "not bytes"]


def stream(environ, start_response):
    """Three pieces from a generator (``?length=N``: with that Content-Length; ``?bad=1``: the
    third is a str)."""
    params = _params(environ)
    start_response("200 OK", [("Content-Length", params["length"])] if "length" in params else [])
    yield b"one,"
    yield b"two,"
    yield "three" if params.get("bad") else b"three"


def no_content(environ, start_response):
    start_response("204 No Content", [])
    return [b""]


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", b"world"]


def file(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    handle = open(_FILE, "rb")
    handle.seek(int(_params(environ).get("offset", "0")))
    return environ["wsgi.file_wrapper"](handle, 8192)


def produce(environ, start_response):
    """Stream `n` MiB, recording in `mark` how many MiB were handed to the server so far."""
    params = _params(environ)
    total, mark = int(params["n"]), params["mark"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def body():
        piece = b"z" * (1024 * 1024)
        for i in range(total):
            yield piece
            with open(mark, "w") as f:
                f.write(str(i + 1))

    return body()


def _spool_fds(spool_dir: str) -> int:
    """Open files of this process that live in the spool directory."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(spool_dir)
        except OSError:
            pass
    return count


def upload(environ, start_response):
    """Report the body's digest and whether it was spooled to a file in the spool dir."""
    import hashlib
    import json

    spool_dir = _params(environ)["dir"]
    on_disk = _spool_fds(spool_dir)
    data = environ["wsgi.input"].read()
    body = json.dumps({"sha": hashlib.sha256(data).hexdigest(), "size": len(data), "on_disk": on_disk,
                       "content_length": environ.get("CONTENT_LENGTH")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def spooled(environ, start_response):
    start_response("200 OK", [])
    return [str(_spool_fds(_params(environ)["dir"])).encode()]


ROUTES = {f.__name__.replace("_", "-"): f for f in (
    short_body, long_body, long_list, bad_header, bad_header_name, hop_by_hop, no_content, hello, file, produce,
    upload, spooled, str_piece, stream)}


def app(environ, start_response):
    return ROUTES[environ["PATH_INFO"].strip("/")](environ, start_response)
