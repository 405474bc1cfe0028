"""One record per request for gunicorn's access log and its request hooks, for every app kind.

    request starts ──► pre_request(worker, req)            (RequestHooks, if set)
    response ends  ──► log.access(resp, req, environ, dt)  (if the access log is on)
                   ──► post_request(worker, req, environ, resp)

gunicorn's ``Logger.atoms`` reads ``resp.status``, ``resp.sent``, ``resp.headers``,
``req.headers`` and the environ (``REMOTE_ADDR``, ``RAW_URI``, ``HTTP_AUTHORIZATION``
for ``%(u)s``...); its hooks read what its own ``Request`` and ``Response`` carry
(``method``, ``path``, ``query``, ``headers``, ``remote_addr``; ``status``,
``status_code``, ``response_length``). These records give them exactly that, so
``--access-logfile``, ``--access-logformat`` (every atom) and the hooks work the
same whatever kind of app answered. WSGI passes its own environ; the other kinds
get the few keys the log reads (``minimal_environ``). Durations are measured with
``time.monotonic`` (microseconds for ``%(D)s``; uvloop's ``loop.time()`` has whole
milliseconds only).
"""

import time
from dataclasses import dataclass
from datetime import timedelta

now = time.monotonic  # the clock of request durations


@dataclass(frozen=True, slots=True)
class RequestHooks:
    """gunicorn's pre_request/post_request hooks (None where not set) and the worker they get."""

    pre_request: object = None
    post_request: object = None
    worker: object = None


class LoggedResponse:
    """What gunicorn's logger and its post_request hook read of a response."""

    __slots__ = ("status", "status_code", "sent", "headers")

    def __init__(self, status: str, sent: int, headers):
        self.status = status  # "200 OK"
        self.status_code = int(status[:3]) if status else 0
        self.sent = sent  # body bytes sent
        self.headers = headers

    @property
    def response_length(self) -> int:
        return self.sent


class LoggedRequest:
    """What gunicorn's logger and its pre_request/post_request hooks read of a request."""

    __slots__ = ("headers", "method", "uri", "path", "query", "version", "remote_addr")

    def __init__(self, head, client=None):
        self.headers = [(name.upper(), value) for name, value in head.headers.items()]
        self.method = head.method
        self.uri = head.target
        self.path = head.path
        self.query = head.query
        self.version = head.version
        self.remote_addr = client


def access_log_enabled(log) -> bool:
    if log is None or not hasattr(log, "access"):
        return False
    return getattr(log, "access_log_enabled", True)


def run_hook(hooks: RequestHooks, hook, log, *args) -> None:
    """Call one of gunicorn's request hooks; its failure is logged, never the request's."""
    try:
        hook(hooks.worker, *args)
    except Exception:
        if log is not None:
            log.exception("Exception in %s hook", getattr(hook, "__name__", "request"))


def record_request_end(log, hooks, access_log: bool, request: LoggedRequest, environ: dict,
                       response: LoggedResponse, seconds: float) -> None:
    """The access log line and the post_request hook of one answered request."""
    if access_log:
        try:
            log.access(response, request, environ, timedelta(seconds=seconds))
        except Exception:
            log.exception("Access log failed")
    if hooks is not None and hooks.post_request is not None:
        run_hook(hooks, hooks.post_request, log, request, environ, response)


def minimal_environ(head, peername) -> dict:
    """What the access log and the hooks read of a request that has no WSGI environ."""
    version = "HTTP/%d.%d" % head.version
    environ = {
        "REQUEST_METHOD": head.method,
        "RAW_URI": head.target,
        "PATH_INFO": head.path,
        "QUERY_STRING": head.query,
        "SERVER_PROTOCOL": version,
    }
    if isinstance(peername, tuple):
        environ["REMOTE_ADDR"] = str(peername[0])
    for key, name in (("HTTP_REFERER", "Referer"), ("HTTP_USER_AGENT", "User-Agent"),
                      ("HTTP_AUTHORIZATION", "Authorization")):
        value = head.headers.get(name)
        if value is not None:
            environ[key] = value
    return environ
