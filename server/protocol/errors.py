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


class BadRequest(HttpError):
    status = 400


class MethodNotAllowed(HttpError):
    status = 405


class RequestTimeout(HttpError):
    status = 408


class PayloadTooLarge(HttpError):
    status = 413


class UriTooLong(HttpError):
    status = 414


class ExpectationFailed(HttpError):
    status = 417


class HeaderFieldsTooLarge(HttpError):
    status = 431


class NotImplementedByServer(HttpError):
    status = 501


class VersionNotSupported(HttpError):
    status = 505


class ResponseHeaderError(HttpError):
    """An application handed over a header that would split the response."""

    status = 500


class ClientDisconnected(ConnectionResetError):
    """A send after the client went away: what the app kinds raise in the app (an ``OSError``,
    as the ASGI spec asks; the WSGI bridge stops the app's iterable with it)."""
