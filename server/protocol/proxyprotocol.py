"""The PROXY protocol (HAProxy's, v1 text and v2 binary), sans-IO.

A TCP load balancer that cannot add HTTP headers sends, before the first
request, one header naming the client it accepted the connection from:

- v1, a text line: ``PROXY TCP4 203.0.113.9 192.0.2.1 40000 80`` and CRLF;
- v2, binary: a 12-byte signature (``V2_SIGNATURE``), version and command,
  address family, length, then the addresses and ports.

``parse_proxy_header`` reads it from the first bytes of a connection; the
address it names stands for the socket peer from then on (see forwarded.py for
which peers must send one, and whom to believe after that).
"""

import ipaddress
import struct
from dataclasses import dataclass

PROXY_HEADER_MODES = ("off", "v1", "v2", "auto")

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the spec's own bound)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/protocol, length


class ProxyHeaderError(Exception):
    """The connection does not start with a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    length: int  # bytes of the header; what follows belongs to HTTP
    version: int
    client: tuple | None  # (host, port); None: LOCAL, UNKNOWN or UNSPEC (keep the socket peer)
    server: tuple | None


def parse_proxy_header(data: bytes, mode: str = "auto") -> ProxyHeader | None:
    """Parse a PROXY protocol header at the start of ``data``.

    Returns None while more bytes are needed; raises ``ProxyHeaderError`` when
    ``data`` cannot start with a header of an accepted version (``mode``: v1,
    v2 or auto).
    """
    v1 = mode in ("v1", "auto")
    v2 = mode in ("v2", "auto")
    if v2 and data[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(data)]:
        return _parse_v2(data) if len(data) >= V2_FIXED else None
    if v1 and data[:len(V1_PREFIX)] == V1_PREFIX[:len(data)]:
        return _parse_v1(data) if len(data) > len(V1_PREFIX) else None
    raise ProxyHeaderError("missing PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line longer than 107 bytes")
        if b"\n" in data:
            raise ProxyHeaderError("PROXY v1 line not ended by CRLF")
        return None
    line = data[:end].decode("ascii", "replace")
    parts = line.split(" ")
    if parts[1:2] == ["UNKNOWN"]:
        return ProxyHeader(end + 2, 1, None, None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"invalid PROXY v1 line: {line!r}")
    version = 4 if parts[1] == "TCP4" else 6
    src, dst = _v1_address(parts[2], version), _v1_address(parts[3], version)
    sport, dport = _v1_port(parts[4]), _v1_port(parts[5])
    return ProxyHeader(end + 2, 1, (src, sport), (dst, dport))


_ADDRESS_CHARS = frozenset("0123456789abcdefABCDEF:.")


def _v1_address(text: str, version: int) -> str:
    """The address, if ``text`` is a plain IPv4 (TCP4) or IPv6 (TCP6) literal: no zone id
    (``fe80::1%eth0``, which ``ipaddress`` takes), nothing but hex digits, colons and dots
    (IPv4 with a leading zero ``ipaddress`` refuses already)."""
    try:
        if not _ADDRESS_CHARS.issuperset(text):
            raise ValueError(text)
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"invalid PROXY v1 address: {text!r}") from None
    if ip.version != version:
        raise ProxyHeaderError(f"PROXY v1 address {text!r} is not IPv{version}")
    return str(ip)


def _v1_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535 \
            or (len(text) > 1 and text[0] == "0"):
        raise ProxyHeaderError(f"invalid PROXY v1 port: {text!r}")
    return int(text)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    version_command, family_protocol, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"unsupported PROXY header version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyHeaderError(f"unsupported PROXY v2 command {command}")
    total = V2_FIXED + length
    if len(data) < total:
        return None
    if command == 0:  # LOCAL: the proxy's own connection (a health check)
        return ProxyHeader(total, 2, None, None)
    family, protocol = family_protocol >> 4, family_protocol & 0x0F
    if family == 0 or family == 3:  # UNSPEC, or a unix socket: no IP address to tell
        return ProxyHeader(total, 2, None, None)
    if protocol != 1:
        raise ProxyHeaderError("PROXY v2 transport is not a stream (TCP)")
    size = {1: 4, 2: 16}.get(family)
    if size is None:
        raise ProxyHeaderError(f"unsupported PROXY v2 address family {family}")
    if length < 2 * size + 4:
        raise ProxyHeaderError("PROXY v2 address block too short")
    block = data[V2_FIXED:V2_FIXED + 2 * size + 4]
    src = str(ipaddress.ip_address(block[:size]))
    dst = str(ipaddress.ip_address(block[size:2 * size]))
    sport, dport = struct.unpack_from("!HH", block, 2 * size)
    return ProxyHeader(total, 2, (src, sport), (dst, dport))
