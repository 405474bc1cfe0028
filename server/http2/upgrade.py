"""Cleartext HTTP/2 by ``Upgrade: h2c`` (RFC 7540 s3.2; gunicorn's ``http2_cleartext =
upgrade``): an HTTP/1.1 request without a body that asks for it gets ``101 Switching
Protocols``; the connection is HTTP/2 from then on and the request is its stream 1.

    GET / HTTP/1.1 ─ Upgrade: h2c, HTTP2-Settings: <base64url SETTINGS>, Connection: Upgrade, HTTP2-Settings
        ──► 101 ──► H2Connection.start_upgraded(settings, head) ──► stream 1 answered in HTTP/2

A request with a body, or without a valid ``HTTP2-Settings``, is served as HTTP/1.1 (the
upgrade is optional for the server). ``UpgradeWatch`` stands in front of the app kind's
``AppConnection`` of the HTTP/1.1 connection and sees each request head first.
"""

import base64
import binascii
import dataclasses

from multidict import CIMultiDict

from .request import HTTP2

SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
_HOP = frozenset(("connection", "upgrade", "http2-settings", "keep-alive", "te", "transfer-encoding"))


def h2c_settings(head) -> bytes | None:
    """The client's ``HTTP2-Settings`` (base64url, padded) if ``head`` asks for h2c and may
    have it, else None."""
    if not head.upgrade or head.has_body or head.headers.get("Upgrade", "").strip().lower() != "h2c":
        return None
    tokens = {t.strip().lower() for t in head.headers.get("Connection", "").split(",")}
    values = head.headers.getall("HTTP2-Settings", ())
    if "http2-settings" not in tokens or len(values) != 1:
        return None
    value = (values[0].strip() + "=" * (-len(values[0].strip()) % 4)).encode("latin-1")
    try:
        base64.urlsafe_b64decode(value)
    except (binascii.Error, ValueError):
        return None
    return value  # (h2 decodes it)


def stream_head(head):
    """The HTTP/1.1 head as stream 1's: version 2, without its connection-specific fields."""
    headers = CIMultiDict((k, v) for k, v in head.headers.items() if k.lower() not in _HOP)
    raw = [(k, v) for k, v in head.raw_headers if k.lower().decode("latin-1") not in _HOP]
    return dataclasses.replace(head, version=HTTP2, headers=headers, raw_headers=raw, keep_alive=True,
                               upgrade=False)


class UpgradeWatch:
    """The app kind's object of an HTTP/1.1 connection, seen through: an h2c upgrade request
    is taken here, every other call goes to the kind's object."""

    def __init__(self, app, connection):
        self._app = app
        self._connection = connection  # the H2Capable connection

    def __getattr__(self, name):
        return getattr(self._app, name)

    def on_request(self, head):
        settings = h2c_settings(head)
        if settings is None or not self._connection.h2c_trusted():
            return self._app.on_request(head)
        self._connection.switch_to_h2c(settings, head)
        return None
