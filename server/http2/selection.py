"""Which accepted connections speak HTTP/2: ``h2_protocol(cls, service)`` makes, from any
connection class, one that hands itself over to an ``H2Connection`` when

- TLS ALPN selected ``h2`` (known when the connection is made: the handshake is done), or
- cleartext HTTP/2 by prior knowledge is on, the peer is in ``forwarded_allow_ips`` (as
  gunicorn's ``http2_cleartext``), and the connection opens with the preface
  ``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n`` (read as its first bytes arrive; anything
  else is HTTP/1.1, served as always), or
- cleartext HTTP/2 by upgrade is on and a request asks for it (``Upgrade: h2c``, upgrade.py).

The hand-over is the connection's ``upgrade(receiver)``: the worker still counts,
stops and closes the accepted connection; the receiver gets its bytes, its end and
its loss, and here also its write pauses.
"""

from dataclasses import dataclass

from .config import H2Settings, require_h2, stream_config
from .frames import PREFACE


@dataclass(slots=True)
class H2Service:
    """What every HTTP/2 connection of a worker shares."""

    kind: object  # the app kind: kind(channel) -> AppConnection
    config: object  # ServerConfig of the streams
    settings: H2Settings

    @classmethod
    def make(cls, kind, config, settings: H2Settings) -> "H2Service":
        require_h2()
        return cls(kind, stream_config(config), settings)


class H2Capable:
    """Mixed in before a connection class: HTTP/2 when ALPN or the preface says so."""

    h2_service: H2Service = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h2_owner = self._owner
        self.h2_connection = None
        self._preface: bytes | None = None  # the first bytes while they may still be the preface
        if self.h2_service.settings.upgrade:
            from .upgrade import UpgradeWatch

            self.app = UpgradeWatch(self.app, self)

    def connection_made(self, transport) -> None:
        settings = self.h2_service.settings
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            super().connection_made(transport)
            if settings.alpn and ssl_object.selected_alpn_protocol() == "h2":
                self._take_over(b"")
            return
        if settings.prior_knowledge and self.h2c_trusted(transport.get_extra_info("peername")):
            self._preface = b""
        super().connection_made(transport)

    def h2c_trusted(self, peername=None) -> bool:
        """Cleartext HTTP/2 is for peers in ``forwarded_allow_ips`` only (as in gunicorn)."""
        proxy = self.config.proxy
        return proxy is not None and proxy.trusts(peername if peername is not None else self.peername)

    def _sniff(self, data: bytes) -> bytes:
        """The bytes for HTTP/1.1, or b"" (the preface so far, or handed to HTTP/2)."""
        buffer = self._preface + data
        if len(buffer) < len(PREFACE) and PREFACE.startswith(buffer):
            self._preface = buffer
            return b""
        self._preface = None
        if buffer.startswith(PREFACE):
            self._take_over(buffer)
            return b""
        return buffer

    def _take_over(self, data: bytes) -> None:
        from .connection import H2Connection

        connection = self.h2_connection = H2Connection(self, self.h2_service, self.h2_owner)
        self.upgrade(connection)
        connection.start(data)

    def switch_to_h2c(self, settings: bytes, head) -> None:
        """``Upgrade: h2c`` (upgrade.py): 101, then HTTP/2 with ``head`` as stream 1."""
        from .connection import H2Connection
        from .upgrade import SWITCHING, stream_head

        self.write(SWITCHING)
        connection = self.h2_connection = H2Connection(self, self.h2_service, self.h2_owner)
        leftover = self.upgrade(connection)
        connection.start_upgraded(settings, stream_head(head), leftover)

    def release(self) -> None:
        """Make room (the worker is at ``worker_connections``): an HTTP/2 connection gets GOAWAY,
        its streams in flight finish, then it closes."""
        super().release()
        if self.h2_connection is not None:
            self.h2_connection.closing()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.h2_connection is not None:
            self.h2_connection.pause_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.h2_connection is not None:
            self.h2_connection.resume_writing()


class PrefaceSniffing(H2Capable):
    """With cleartext prior knowledge: the first bytes of a connection are looked at (only
    this class adds a step to ``data_received``, on every read of its connections)."""

    def data_received(self, data: bytes) -> None:
        if self._preface is not None:
            data = self._sniff(data)
            if not data:
                return
        super().data_received(data)


def h2_protocol(cls: type, service: H2Service) -> type:
    """The connection class ``cls`` that also serves HTTP/2 as ``service`` says."""
    mixin = PrefaceSniffing if service.settings.prior_knowledge else H2Capable
    return type(f"H2{cls.__name__}", (mixin, cls), {"h2_service": service, "__module__": cls.__module__})
