"""What the HTTP/2 connections of one worker share: gunicorn's http2_* settings as plain
values, the app kind, and the bounds of the defences (frames.py, connection.py)."""

import dataclasses
from dataclasses import dataclass

DEFAULT_MAX_HEADER_LIST_SIZE = 65536  # gunicorn's http2_max_header_list_size
RESET_LIMIT = 200  # streams the client may reset per RESET_INTERVAL (CVE-2023-44487, rapid reset)
RESET_INTERVAL = 10.0  # seconds
UNREAD_ANSWERS = 1000  # PING/SETTINGS answered while the client does not read, then the connection ends
MIN_HEADER_BLOCK = 16384  # the header block cap is never below one default frame


class H2Unavailable(RuntimeError):
    """HTTP/2 is configured but the ``h2`` package is not installed."""


def require_h2() -> None:
    """Import hyper-h2 (only when HTTP/2 is on); a clear error when it is not installed."""
    try:
        import h2.connection  # noqa: F401
    except ImportError as exc:
        raise H2Unavailable("HTTP/2 is enabled (http_protocols includes h2, or ASYNCWORKER_HTTP2=1) but the "
                            "h2 package is not installed: pip install 'asyncworker-server[http2]'") from exc


@dataclass(frozen=True, slots=True)
class H2Settings:
    """gunicorn's HTTP/2 settings, as this worker applies them."""

    alpn: bool = True  # offer h2 by TLS ALPN (on TLS listeners)
    prior_knowledge: bool = False  # cleartext: a connection opening with the preface is HTTP/2
    upgrade: bool = False  # cleartext: an HTTP/1.1 request with Upgrade: h2c switches (RFC 7540 s3.2)
    max_concurrent_streams: int = 100
    initial_window_size: int = 65535  # each stream's receive window (bytes)
    max_frame_size: int = 16384
    max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE  # decoded fields (RFC 9113 s6.5.2)
    reset_limit: int = RESET_LIMIT
    reset_interval: float = RESET_INTERVAL
    unread_answers: int = UNREAD_ANSWERS

    @property
    def max_header_block(self) -> int:
        """Encoded bytes of one header block (HEADERS + CONTINUATION): HPACK never makes a
        field list longer than its block is large, so the decoded cap bounds it too."""
        return max(MIN_HEADER_BLOCK, self.max_header_list_size)

    @property
    def connection_window(self) -> int:
        """The connection's receive window: room for every stream's, so a stream whose app
        reads slowly (its window held) never stalls the others."""
        return min(2**31 - 1, max(65535, self.max_concurrent_streams * self.initial_window_size))


def header_list_size(settings: H2Settings, limits) -> int:
    """The decoded header list bound: gunicorn's http2_max_header_list_size (0: none), and no
    more than ``limit_request_fields`` fields of ``limit_request_field_size`` (32 bytes of
    overhead each, as RFC 9113 counts them)."""
    from_limits = (limits.fields + 4) * (limits.field_size + 32)
    configured = settings.max_header_list_size or from_limits
    return min(configured, from_limits)


def stream_config(config):
    """The connection settings of a stream: as HTTP/1.1's, files read by blocks (no sendfile on h2)."""
    return dataclasses.replace(config, sendfile=False)
