"""A connection that speaks uwsgi (gunicorn's ``protocol = uwsgi``): one request, then close.

    peer ──connection_made──► allowed (uwsgi_allow_ips)? no: closed, nothing read
      │ yes
    bytes ──UwsgiParser (uwsgi.py)──► RequestHead, Data, EndOfMessage ──► the app kind, unchanged
    app ──response_head / send_response...──► an HTTP/1.1 response, Connection: close ──► closed

``uwsgi_protocol(cls, allow)`` makes, from any connection class (``ServerHttpProtocol``
or an app kind's subclass), one that reads uwsgi packets instead of HTTP requests.
The response is a plain HTTP response on the same socket (nginx's uwsgi module reads
its status line and headers) and, as with gunicorn's workers, the connection closes
after it: the response says ``Connection: close`` and a body of unknown size is
delimited by the close, never chunked (nginx would pass the chunk markers on as body).
A peer outside ``uwsgi_allow_ips`` (addresses, networks or "*"; a unix socket peer is
always allowed) is closed at once, as gunicorn closes it without reading a request.
HTTPS or ``wsgi.url_scheme`` in the packet set the request's scheme.
"""

import dataclasses

from .forwarded import AllowList
from .peer import peer_ip
from .uwsgi import UwsgiParser

CLOSE_DELIMITED = (1, 0)  # the response framing of an HTTP/1.0 client: no chunks, the close ends the body
DEFAULT_ALLOW = ("127.0.0.1", "::1")  # gunicorn's default uwsgi_allow_ips


class UwsgiConnection:
    """Mixed in before a connection class: uwsgi in, one HTTP response out, then close."""

    parser_class = UwsgiParser
    uwsgi_allow = AllowList(DEFAULT_ALLOW)

    def connection_made(self, transport) -> None:
        peername = transport.get_extra_info("peername")
        if not self.uwsgi_allow.allows_peer(peername):
            if self.log is not None:
                self.log.warning("Closing %s: uwsgi requests from it are not allowed (uwsgi_allow_ips)",
                                 peer_ip(peername))
            transport.close()
            return
        self.keep_alive_allowed = False
        super().connection_made(transport)

    def response_head(self, request, status: int | str, reason, fields, body_size: int | None = None,
                      close: bool = False, normalise=None):
        """The head of a response that closes the connection, its body never chunked."""
        return self.config.heads.head(status, reason, fields, request.method, CLOSE_DELIMITED, False,
                                      body_size, normalise)

    def _resolve_forwarded(self, head):
        """The scheme the packet named, over the connection's."""
        forwarded = super()._resolve_forwarded(head)
        scheme = self._parser.scheme
        if scheme is None or scheme == forwarded.scheme:
            return forwarded
        return dataclasses.replace(forwarded, scheme=scheme)


def uwsgi_protocol(cls: type, allow_ips=DEFAULT_ALLOW) -> type:
    """The connection class ``cls`` serving uwsgi to the peers in ``allow_ips``."""
    return type(f"Uwsgi{cls.__name__}", (UwsgiConnection, cls),
                {"uwsgi_allow": AllowList(allow_ips), "__module__": cls.__module__})
