"""HTTP exceptions: responses a handler can raise (or return), as in aiohttp's ``web``.

    raise web.HTTPNotFound()            → 404 "404: Not Found"
    raise web.HTTPFound("/login")       → 302 with Location
    return web.HTTPNoContent()          → 204

Each class is both an ``Exception`` and a ``Response``; the server sends it like
any response. The router raises ``HTTPNotFound`` and ``HTTPMethodNotAllowed``
(with ``Allow``) itself, through the middlewares, so they can restyle them.
"""

from .response import Response


class HTTPException(Response, Exception):
    status_code = -1
    empty_body = False

    def __init__(self, *, headers=None, reason: str | None = None, body=None, text: str | None = None,
                 content_type: str | None = None):
        Response.__init__(self, status=self.status_code, headers=headers, reason=reason, body=body, text=text,
                          content_type=content_type)
        Exception.__init__(self, self.reason)
        if self.body is None and not self.empty_body:
            self.text = f"{self.status}: {self.reason}"

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.reason}>"

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class HTTPError(HTTPException):
    """4xx and 5xx."""


class HTTPSuccessful(HTTPException):
    pass


class HTTPRedirection(HTTPException):
    pass


class HTTPClientError(HTTPError):
    pass


class HTTPServerError(HTTPError):
    pass


class _HTTPMove(HTTPRedirection):
    def __init__(self, location, *, headers=None, reason=None, body=None, text=None, content_type=None):
        location = str(location)
        if not location:
            raise ValueError("HTTP redirects need a location to redirect to.")
        if any(c in location for c in "\r\n\x00"):
            raise ValueError("Location cannot contain \\r, \\n or \\0")
        super().__init__(headers=headers, reason=reason, body=body, text=text, content_type=content_type)
        self.headers["Location"] = location
        self.location = location


class HTTPMethodNotAllowed(HTTPClientError):
    status_code = 405

    def __init__(self, method: str, allowed_methods, *, headers=None, reason=None, body=None, text=None,
                 content_type=None):
        allowed = ",".join(sorted(allowed_methods))
        super().__init__(headers=headers, reason=reason, body=body, text=text, content_type=content_type)
        self.headers["Allow"] = allowed
        self.allowed_methods = set(allowed_methods)
        self.method = method.upper()


class HTTPRequestEntityTooLarge(HTTPClientError):
    status_code = 413

    def __init__(self, max_size: int, actual_size: int, **kwargs):
        kwargs.setdefault("text", f"Maximum request body size {max_size} exceeded, actual body size {actual_size}")
        super().__init__(**kwargs)


class HTTPOk(HTTPSuccessful):
    status_code = 200


class HTTPCreated(HTTPSuccessful):
    status_code = 201


class HTTPAccepted(HTTPSuccessful):
    status_code = 202


class HTTPNonAuthoritativeInformation(HTTPSuccessful):
    status_code = 203


class HTTPNoContent(HTTPSuccessful):
    status_code = 204
    empty_body = True


class HTTPResetContent(HTTPSuccessful):
    status_code = 205
    empty_body = True


class HTTPPartialContent(HTTPSuccessful):
    status_code = 206


class HTTPMultipleChoices(_HTTPMove):
    status_code = 300


class HTTPMovedPermanently(_HTTPMove):
    status_code = 301


class HTTPFound(_HTTPMove):
    status_code = 302


class HTTPSeeOther(_HTTPMove):
    status_code = 303


class HTTPUseProxy(_HTTPMove):
    status_code = 305


class HTTPTemporaryRedirect(_HTTPMove):
    status_code = 307


class HTTPPermanentRedirect(_HTTPMove):
    status_code = 308


class HTTPNotModified(HTTPRedirection):
    status_code = 304
    empty_body = True


class HTTPBadRequest(HTTPClientError):
    status_code = 400


class HTTPUnauthorized(HTTPClientError):
    status_code = 401


class HTTPPaymentRequired(HTTPClientError):
    status_code = 402


class HTTPForbidden(HTTPClientError):
    status_code = 403


class HTTPNotFound(HTTPClientError):
    status_code = 404


class HTTPNotAcceptable(HTTPClientError):
    status_code = 406


class HTTPProxyAuthenticationRequired(HTTPClientError):
    status_code = 407


class HTTPRequestTimeout(HTTPClientError):
    status_code = 408


class HTTPConflict(HTTPClientError):
    status_code = 409


class HTTPGone(HTTPClientError):
    status_code = 410


class HTTPLengthRequired(HTTPClientError):
    status_code = 411


class HTTPPreconditionFailed(HTTPClientError):
    status_code = 412


class HTTPRequestURITooLong(HTTPClientError):
    status_code = 414


class HTTPUnsupportedMediaType(HTTPClientError):
    status_code = 415


class HTTPRequestRangeNotSatisfiable(HTTPClientError):
    status_code = 416


class HTTPExpectationFailed(HTTPClientError):
    status_code = 417


class HTTPMisdirectedRequest(HTTPClientError):
    status_code = 421


class HTTPUnprocessableEntity(HTTPClientError):
    status_code = 422


class HTTPFailedDependency(HTTPClientError):
    status_code = 424


class HTTPUpgradeRequired(HTTPClientError):
    status_code = 426


class HTTPPreconditionRequired(HTTPClientError):
    status_code = 428


class HTTPTooManyRequests(HTTPClientError):
    status_code = 429


class HTTPRequestHeaderFieldsTooLarge(HTTPClientError):
    status_code = 431


class HTTPUnavailableForLegalReasons(HTTPClientError):
    status_code = 451


class HTTPInternalServerError(HTTPServerError):
    status_code = 500


class HTTPNotImplemented(HTTPServerError):
    status_code = 501


class HTTPBadGateway(HTTPServerError):
    status_code = 502


class HTTPServiceUnavailable(HTTPServerError):
    status_code = 503


class HTTPGatewayTimeout(HTTPServerError):
    status_code = 504


class HTTPVersionNotSupported(HTTPServerError):
    status_code = 505


class HTTPVariantAlsoNegotiates(HTTPServerError):
    status_code = 506


class HTTPInsufficientStorage(HTTPServerError):
    status_code = 507


class HTTPNotExtended(HTTPServerError):
    status_code = 510


class HTTPNetworkAuthenticationRequired(HTTPServerError):
    status_code = 511


__all__ = sorted(name for name, value in dict(globals()).items()
                 if isinstance(value, type) and issubclass(value, HTTPException) and not name.startswith("_"))
