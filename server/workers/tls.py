"""TLS for the worker's listeners: an ``ssl.SSLContext`` from gunicorn's settings.

    certfile, keyfile, ca_certs, cert_reqs, ciphers ──► gunicorn.sock.ssl_context(cfg)
        (which calls the user's ``ssl_context(conf, factory)`` hook) ──► loop.create_server(ssl=...)

The context is gunicorn's own, so every SSL setting and the ``ssl_context`` hook
mean what they mean with gunicorn's workers. What differs, from serving
TLS through the event loop:

- ``do_handshake_on_connect`` has no effect: asyncio (and uvloop) always complete
  the handshake before the first byte reaches the protocol, on the loop, without
  a thread; a client that stalls it is dropped after ``ssl_handshake_timeout``.
- A failed handshake (a plain-HTTP client, a scanner, a client that does not
  trust the certificate) closes that connection and costs nothing else: it is
  logged at debug level (``Listeners``), no protocol is ever connected, no
  request is counted.
- ALPN offers ``h2`` then ``http/1.1`` when HTTP/2 is on (``http_protocols``
  includes ``h2``: see ``server/http2/``), else only ``http/1.1``.

``ssl_version`` is ignored, as gunicorn ignores it since 21.0: Python's default
context already refuses anything below TLS 1.2; raise the floor with the hook
(``context.minimum_version = ssl.TLSVersion.TLSv1_3``).

The PROXY protocol cannot be combined with TLS served here: a load balancer sends
its PROXY header before the TLS handshake, which would read it as a bad ClientHello.
"""

import ssl

from gunicorn import sock as gunicorn_sock


def ssl_context(cfg, http2: bool = False) -> ssl.SSLContext | None:
    """The server-side context for gunicorn's ``cfg``; None when TLS is not configured."""
    if not cfg.is_ssl:
        return None
    context = gunicorn_sock.ssl_context(cfg)
    context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    return context
