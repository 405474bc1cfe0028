"""The one Host of a request (RFC 9112 s3.2 and s3.2.2), settled once per head.

    RequestHead ──settle_host()──► Host checked; an absolute-form target's authority
                                   replaces it (in ``headers`` and ``raw_headers``)

Every app kind then reads the Host header and finds the same checked value: WSGI's
``HTTP_HOST``/``SERVER_NAME``/``SERVER_PORT``, the ASGI ``host`` header, the native
``request.host``. A Host that is not ``host[:port]`` (a reg-name, an IPv4 address or
a bracketed IPv6 address; the port digits only) is a 400: a value such as
``evil.example/x?`` or ``a:b:c`` would otherwise reach the app, and whatever builds a
URL from it. An empty Host stays valid (RFC 9112 s3.2: a target with no authority).

The pattern is matched without backtracking (each character has one way to match,
the quantifiers are possessive): linear in the length of the value, which the field
size limit bounds. Valid values are remembered, so a keep-alive client's repeated
Host costs one dictionary lookup.
"""

import ipaddress
import re

from multidict import istr

from .caches import remember
from .errors import BadRequest

# RFC 3986 s3.2.2 reg-name: unreserved / pct-encoded / sub-delims; IP-literal in brackets.
_AUTHORITY = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*+|\[([0-9A-Fa-f:.]++)\]")
_PORT = re.compile(r"[0-9]{0,5}")
_PATH_START = re.compile(r"[/?]")
_HOST = istr("Host")  # (an istr: CIMultiDict reuses its case-folded form and hash)

VALID_HOSTS: dict[str, bool] = {}  # the values valid_authority() accepted, remembered (the C shortcut reads it too)
CACHED = 256


def valid_authority(value: str) -> bool:
    """Is ``value`` a ``host[:port]`` (RFC 9112 s3.2's uri-host [ ":" port ])?"""
    if value in VALID_HOSTS:
        return True
    if value.startswith("["):
        host, bracket, rest = value.partition("]")
        if not bracket:
            return False
        host += "]"
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return False
    else:
        host, colon, port = value.partition(":")
        if colon and not host:
            return False  # a port with no host
        port = port if colon else None
    m = _AUTHORITY.fullmatch(host)
    if m is None or (port is not None and _PORT.fullmatch(port) is None):
        return False
    if m.group(1) is not None and not _ipv6(m.group(1)):
        return False
    remember(VALID_HOSTS, value, True, CACHED)
    return True


def settle_host(head) -> None:
    """Check the Host of ``head``; with an absolute-form target, put the target's
    authority in its place first (RFC 9112 s3.2.2: the Host field is then ignored).
    Raises BadRequest (the parser answers 400 and closes)."""
    target = head.target
    if target[0] != "/" and target != "*":
        _take_target_authority(head, target)
    host = head.headers.get(_HOST)
    if host in VALID_HOSTS or host is None:  # the common case: one lookup
        return
    if not valid_authority(host):
        raise BadRequest("Invalid Host header")


def _take_target_authority(head, target: str) -> None:
    """The parser has checked the form (``grammar.absolute_form``): scheme "://" authority
    [ path-abempty ] [ "?" query ], http or https, no userinfo."""
    start = target.index("://") + 3
    path = _PATH_START.search(target, start)
    authority = target[start:path.start() if path else len(target)]
    if not authority or authority.startswith((":", "[]")):
        raise BadRequest("Empty host in the request target")
    if not valid_authority(authority):
        raise BadRequest("Invalid host in the request target")
    head.headers["Host"] = authority
    raw = head.raw_headers
    value = authority.encode("latin-1")
    for index, (name, _) in enumerate(raw):
        if name.lower() == b"host":
            raw[index] = (name, value)
            break
    else:
        raw.append((b"Host", value))


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
