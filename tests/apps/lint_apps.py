"""Small WSGI apps behind webtest's lint middleware, which asserts PEP 3333 on both sides.

A server violating PEP 3333 makes lint raise inside the app (so the answer becomes a 500),
or print an AssertionError to the server log (e.g. an iterator that was never closed)."""

from webtest.lint import middleware

from sample_data import sample_path

STREAM_CHUNKS = [b"first chunk\n", b"second\n", b"", b"third and last\n"]
PLAIN_BODY = b"plain body\n"
WRITE_PARTS = (b"written ", b"then iterated\n")


def _start(start_response, headers=()):
    return start_response("200 OK", [("Content-Type", "text/plain"), *headers])


def plain(environ, start_response):
    _start(start_response, [("Content-Length", str(len(PLAIN_BODY)))])
    return [PLAIN_BODY]


def stream(environ, start_response):
    _start(start_response)
    yield from STREAM_CHUNKS


def wrapped_file(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](open(sample_path(), "rb"), 8192)


def error(environ, start_response):
    raise RuntimeError("lint_apps /error: raised on purpose before start_response")


def post(environ, start_response):
    body = environ["wsgi.input"].read()
    answer = str(len(body)).encode()
    _start(start_response, [("Content-Length", str(len(answer)))])
    return [answer]


def write(environ, start_response):
    _start(start_response)(WRITE_PARTS[0])
    return [WRITE_PARTS[1]]


ROUTES = {"/plain": plain, "/stream": stream, "/file": wrapped_file, "/error": error,
          "/post": post, "/write": write}


def dispatch(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return []
    return route(environ, start_response)


app = middleware(dispatch)
