"""Who the client is: the PROXY protocol header at the start of a connection, and
what each request's forwarding headers say (believed from trusted peers only).

    bytes ──_read_proxy_header()──► peername (the client a load balancer names)
    head ──_resolve_forwarded()──► forwarded(head): client, scheme, host, forwarder fields
         _peer_checked(): a 400 for disagreeing forwarded fields, or header_map = refuse

Mixed into ``ServerHttpProtocol``; the policy itself is ``forwarded.py`` and the
header's grammar ``proxyprotocol.py``.
"""

import socket

from .events import RequestHead
from .forwarded import Forwarded, direct
from .proxyprotocol import ProxyHeaderError, parse_proxy_header


class PeerResolution:
    """The client of a connection and of each of its requests."""

    __slots__ = ()  # its state is in the connection's slots (``server.py``)

    def _init_peer(self) -> None:
        self.peername = None
        self.sockname = None
        self._proxy_buffer: bytes | None = None  # a PROXY protocol header being received
        # (head, forwarded.Forwarded) of the request being answered, as forwarded(head) gives it;
        # an app kind may look at it first, without the call (WSGI, ASGI: a call less per request)
        self.request_forwarded: tuple | None = None
        self._direct: Forwarded | None = None  # what a request that forwards nothing says (per peer)
        self._peer_trusted: bool | None = None  # may the peer forward? (per peer)

    def forwarded(self, head: RequestHead) -> Forwarded:
        """The client, scheme, forwarded host and forwarder fields of ``head``: the
        peer's own, unless a trusted proxy forwarded them (see forwarded.py)."""
        cached = self.request_forwarded
        if cached is not None and cached[0] is head:
            return cached[1]
        return self._resolve_forwarded(head)

    def _peer_checked(self, head: RequestHead) -> bool:
        """May ``head`` go on, given what it says of its client? False: it got a 400."""
        forwarded = self.request_forwarded[1]
        if forwarded.error is not None:
            self.handle_error(400, forwarded.error, close=head.has_body)
            return False
        if self.config.refuse_underscores:
            name = _underscore_name(head, forwarded.fields)
            if name is not None:
                self.handle_error(400, f"Invalid header name {name!r}: '_' is refused (header_map)",
                                  close=head.has_body)
                return False
        return True

    def _resolve_forwarded(self, head: RequestHead) -> Forwarded:
        """Most requests forward nothing, or come from a peer that may not: their answer
        is the same for the whole connection, made once. Whether the peer is trusted is
        asked only of a request that forwards something (a connection per request from a
        client that forwards nothing never needs it)."""
        proxy = self.config.proxy
        if proxy is None or head.headers.keys().isdisjoint(proxy.watched):  # (proxy.forwards, inline)
            return self._direct or self._own_forwarded()
        return self._proxied(head, proxy)

    def _own_forwarded(self) -> Forwarded:
        """What a request that forwards nothing says: the peer is the client (made once per peer)."""
        self._direct = direct(self.peername, self.config.scheme)
        return self._direct

    def _proxied(self, head: RequestHead, proxy) -> Forwarded:
        """What ``head``, which carries a field ``proxy`` reads, says: what was forwarded, if
        the peer may forward (asked once per peer), else the peer's own."""
        if self._peer_trusted is None:
            self._peer_trusted = proxy.trusts(self.peername)
        if not self._peer_trusted:
            return self._direct or self._own_forwarded()
        return proxy.resolve_trusted(head.headers, self.peername, self.config.scheme)

    def _read_proxy_header(self, data: bytes) -> bytes:
        """Take the PROXY protocol header off the start of the connection.

        Returns the bytes after it (empty while it is incomplete). The address it
        names becomes ``peername``; a bad or missing header closes the connection.
        """
        buffer = self._proxy_buffer + data
        try:
            header = parse_proxy_header(buffer, self.config.proxy.proxy_protocol)
        except ProxyHeaderError as exc:
            if self.log is not None:
                self.log.warning("Closing %s: %s", peer_ip(self.peername), exc)
            self._proxy_buffer = None
            self.pause_reading("error")
            self.close()
            return b""
        if header is None:
            self._proxy_buffer = buffer
            return b""
        self._proxy_buffer = None
        if header.client is not None:
            self.peername = header.client
            self._direct = self._peer_trusted = None  # made for the previous peername
        return buffer[header.length:]


def _underscore_name(head: RequestHead, allowed: frozenset) -> str | None:
    """The first field name holding "_" that is not a trusted proxy's forwarder field."""
    for name in head.headers:
        if "_" in name and name.upper() not in allowed:
            return name
    return None


def peer_ip(peername) -> str:
    return str(peername[0]) if isinstance(peername, tuple) else "unix socket"


_socknames: dict = {}
SOCKNAMES_SHARED = 64  # local addresses whose tuple is shared (a worker listens on a few)


def shared_sockname(sockname):
    """``sockname``, as one tuple for every connection to the same local address: each
    connection keeps its own otherwise (145 bytes for as long as it stays open)."""
    if type(sockname) is not tuple or len(_socknames) >= SOCKNAMES_SHARED:
        return sockname
    return _socknames.setdefault(sockname, sockname)


def set_tcp_keepalive(transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        pass
