"""Access log records handed to gunicorn's logger (``log.access(resp, req, environ, dt)``).

gunicorn's ``Logger.atoms`` reads ``resp.status``, ``resp.sent``, ``resp.headers``
and ``req.headers``; these two small records give it exactly that, so
``--access-logfile``, ``--access-logformat`` (every atom, ``%({header}i)s``
included) and statsd keep working unchanged.
"""

from datetime import timedelta


class LoggedResponse:
    __slots__ = ("status", "sent", "headers")

    def __init__(self, status: str, sent: int, headers):
        self.status = status
        self.sent = sent
        self.headers = headers


class LoggedRequest:
    """What gunicorn's logger and its pre_request/post_request hooks read of a request."""

    __slots__ = ("headers", "method", "uri", "path", "query", "version")

    def __init__(self, headers, head=None):
        self.headers = headers  # (name, value) pairs
        if head is not None:
            self.method = head.method
            self.uri = head.target
            self.path = head.path
            self.query = head.query
            self.version = head.version


def access_log_enabled(log) -> bool:
    if log is None or not hasattr(log, "access"):
        return False
    return getattr(log, "access_log_enabled", True)


def log_access(log, environ: dict, request_headers, status: str, response_headers, sent: int, seconds: float) -> None:
    resp = LoggedResponse(status, sent, response_headers)
    log.access(resp, LoggedRequest(request_headers), environ, timedelta(seconds=seconds))


def minimal_environ(head, peername) -> dict:
    """What the access log needs of a request the server answered itself."""
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
    for key, name in (("HTTP_REFERER", "Referer"), ("HTTP_USER_AGENT", "User-Agent")):
        value = head.headers.get(name)
        if value is not None:
            environ[key] = value
    return environ
