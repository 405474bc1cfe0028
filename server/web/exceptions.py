"""HTTP exceptions: responses a handler can raise (or return), as in aiohttp's ``web``.

    raise web.HTTPNotFound()            → 404 "404: Not Found"
    raise web.HTTPFound("/login")       → 302 with Location
    return web.HTTPNoContent()          → 204

Each class is both an ``Exception`` and a ``Response``; the server sends it like
any response. The router raises ``HTTPNotFound`` and ``HTTPMethodNotAllowed``
(with ``Allow``) itself, through the middlewares, so they can restyle them.

Most classes differ from their base only in their status: they are made from
one table, ``_STATUS_CLASSES``, and import like any other class.
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


# The classes that differ from their base only in their status (and, for a status
# that has no body, ``empty_body``), as ``{base: {class name: status}}``.
_STATUS_CLASSES = {
    HTTPSuccessful: {
        "HTTPOk": 200,
        "HTTPCreated": 201,
        "HTTPAccepted": 202,
        "HTTPNonAuthoritativeInformation": 203,
        "HTTPNoContent": 204,
        "HTTPResetContent": 205,
        "HTTPPartialContent": 206,
    },
    _HTTPMove: {
        "HTTPMultipleChoices": 300,
        "HTTPMovedPermanently": 301,
        "HTTPFound": 302,
        "HTTPSeeOther": 303,
        "HTTPUseProxy": 305,
        "HTTPTemporaryRedirect": 307,
        "HTTPPermanentRedirect": 308,
    },
    HTTPRedirection: {
        "HTTPNotModified": 304,
    },
    HTTPClientError: {
        "HTTPBadRequest": 400,
        "HTTPUnauthorized": 401,
        "HTTPPaymentRequired": 402,
        "HTTPForbidden": 403,
        "HTTPNotFound": 404,
        "HTTPNotAcceptable": 406,
        "HTTPProxyAuthenticationRequired": 407,
        "HTTPRequestTimeout": 408,
        "HTTPConflict": 409,
        "HTTPGone": 410,
        "HTTPLengthRequired": 411,
        "HTTPPreconditionFailed": 412,
        "HTTPRequestURITooLong": 414,
        "HTTPUnsupportedMediaType": 415,
        "HTTPRequestRangeNotSatisfiable": 416,
        "HTTPExpectationFailed": 417,
        "HTTPMisdirectedRequest": 421,
        "HTTPUnprocessableEntity": 422,
        "HTTPFailedDependency": 424,
        "HTTPUpgradeRequired": 426,
        "HTTPPreconditionRequired": 428,
        "HTTPTooManyRequests": 429,
        "HTTPRequestHeaderFieldsTooLarge": 431,
        "HTTPUnavailableForLegalReasons": 451,
    },
    HTTPServerError: {
        "HTTPInternalServerError": 500,
        "HTTPNotImplemented": 501,
        "HTTPBadGateway": 502,
        "HTTPServiceUnavailable": 503,
        "HTTPGatewayTimeout": 504,
        "HTTPVersionNotSupported": 505,
        "HTTPVariantAlsoNegotiates": 506,
        "HTTPInsufficientStorage": 507,
        "HTTPNotExtended": 510,
        "HTTPNetworkAuthenticationRequired": 511,
    },
}
_NO_BODY_STATUSES = frozenset((204, 205, 304))


def _define_status_classes(table: dict) -> None:
    """Define each class of ``table`` in this module, as a ``class`` statement would."""
    for base, classes in table.items():
        for name, status in classes.items():
            namespace = {"status_code": status}
            if status in _NO_BODY_STATUSES:
                namespace["empty_body"] = True
            globals()[name] = type(name, (base,), namespace)


_define_status_classes(_STATUS_CLASSES)

__all__ = sorted(name for name, value in dict(globals()).items()
                 if isinstance(value, type) and issubclass(value, HTTPException) and not name.startswith("_"))
