"""Response splitting: CR, LF or NUL in a header name, header value or reason phrase handed
over by a WSGI, ASGI or native app never reaches the wire; the client gets a 500 instead
and the connection stays in sync for the next request."""

import pytest

from hardening_support import hardening_server, is_asyncworker, request
from helpers import Gunicorn, parse_responses, send_and_read

CHARS = ["cr", "lf", "nul", "crlf"]
KINDS = {  # app kind: (gunicorn app, where the app can put a character, paths)
    "wsgi": ("hardening_apps:app", ["name", "value", "status"], ["/split"]),
    "asgi": ("hardening_asgi:app", ["name", "value"], ["/split"]),  # ASGI statuses are ints
    "native": ("hardening_web:app", ["name", "value", "status"], ["/split", "/split-stream"]),
}


@pytest.fixture(scope="module", params=list(KINDS))
def server(request, tmp_path_factory):
    kind = request.param
    if kind != "wsgi" and not is_asyncworker():
        pytest.skip(f"{kind} apps are served by server.workers.AsyncWorker only")
    app = KINDS[kind][0]
    marks = tmp_path_factory.mktemp(f"splitting-{kind}")
    with (hardening_server(marks) if kind == "wsgi" else Gunicorn(app)) as srv:
        srv.kind = kind
        yield srv


def cases(server):
    _, wheres, paths = KINDS[server.kind]
    return [(path, where, char) for path in paths for where in wheres for char in CHARS]


def test_header_injection_gives_500_and_nothing_on_the_wire(server):
    failures = []
    for path, where, char in cases(server):
        raw = request("GET", f"{path}?where={where}&char={char}") + request("GET", "/after", "Connection: close")
        data, closed = send_and_read(server.port, raw)
        statuses = [r.status for r in parse_responses(data)]
        leaked = [s for s in (b"injected", b"Set-Cookie", b"\x00", b"should not be sent") if s in data]
        if leaked or statuses != [500, 200] or not closed or not data.endswith(b"/after"):
            failures.append(f"{path} {where} {char}: statuses {statuses}, leaked {leaked}, closed {closed}")
    assert not failures, "\n".join(failures)
