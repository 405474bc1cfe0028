"""Protocol errors that carry the HTTP status they should be answered with.

The parser raises these; `ServerHttpProtocol.handle_error` is the one place that
turns them into a response. Any `HttpError` raised while reading a request means
the framing of the connection can no longer be trusted, so the connection is
closed after the error response (``close`` is True for all parse errors).
"""

from http import HTTPStatus


class HttpError(Exception):
    """An error answered with ``status``; ``message`` is safe to show a client."""

    status = 500
    close = True

    def __init__(self, message: str = "", *, status: int | None = None):
        if status is not None:
            self.status = status
        self.message = message or HTTPStatus(self.status).phrase
        super().__init__(self.message)

    @property
    def reason(self) -> str:
        return HTTPStatus(self.status).phrase

    @classmethod
    def with_status(cls, name: str, status: int) -> type:
        """A subclass named ``name`` answered with ``status``."""
        return type(name, (cls,), {"status": status, "__module__": __name__,
                                   "__doc__": f"Answered with {status} {HTTPStatus(status).phrase}."})


# The errors of the request side that differ only in their status.
BadRequest = HttpError.with_status("BadRequest", 400)
MethodNotAllowed = HttpError.with_status("MethodNotAllowed", 405)
RequestTimeout = HttpError.with_status("RequestTimeout", 408)
PayloadTooLarge = HttpError.with_status("PayloadTooLarge", 413)
UriTooLong = HttpError.with_status("UriTooLong", 414)
ExpectationFailed = HttpError.with_status("ExpectationFailed", 417)
HeaderFieldsTooLarge = HttpError.with_status("HeaderFieldsTooLarge", 431)
NotImplementedByServer = HttpError.with_status("NotImplementedByServer", 501)
VersionNotSupported = HttpError.with_status("VersionNotSupported", 505)


class ResponseHeaderError(HttpError):
    """An application handed over a header that would split the response."""

    status = 500


class ClientDisconnected(ConnectionResetError):
    """A send after the client went away: what the app kinds raise in the app (an ``OSError``,
    as the ASGI spec asks; the WSGI bridge stops the app's iterable with it)."""
