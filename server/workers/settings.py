"""Settings of this worker that gunicorn has no name for.

gunicorn's own settings keep their meaning (``keepalive``, ``threads``,
``limit_request_*``, ``graceful_timeout``...). The few settings gunicorn does not
have are read from environment variables, which gunicorn can set for its
workers with ``--env NAME=VALUE`` or ``raw_env = [...]`` in a config file:

==============================  =========  ===========================================
variable                        default    meaning
==============================  =========  ===========================================
ASYNCWORKER_READPAYLOAD         1          receive a WSGI request body before calling the
                                           app (0: stream it through a blocking wsgi.input)
ASYNCWORKER_SPOOL_THRESHOLD     1048576    body bytes kept in memory before spooling to a
                                           temporary file (in gunicorn's tmp_upload_dir)
ASYNCWORKER_RESPONSE_SPOOL_MEMORY
                                1048576    bytes of a WSGI response waiting for a slow client
                                           kept in memory, then in a temporary file (in
                                           gunicorn's tmp_upload_dir)
ASYNCWORKER_RESPONSE_SPOOL_MAX  67108864   bytes of one WSGI response held for a slow client;
                                           past them its app thread waits (0: no spooling)
ASYNCWORKER_RESPONSE_SPOOL_BUDGET
                                1073741824 bytes all the response spools of a worker hold
                                           together; past them app threads wait
ASYNCWORKER_MALLOC_RETAIN       33554432   freed heap bytes the worker keeps for reuse (glibc)
                                           instead of returning them at once; bodies then
                                           reuse warm pages (0: glibc's default; heap.py)
ASYNCWORKER_GC_FREEZE           1          once the app is loaded, collect and freeze what exists
                                           (gc.freeze): later collections skip it (heap.py)
ASYNCWORKER_GC_THRESHOLD        50000      the garbage collector's first threshold, set once the
                                           app is loaded, unless the app or the config file set
                                           their own (0: Python's, 700; heap.py)
ASYNCWORKER_MAX_BODY_SIZE       0          request body cap in bytes, 413 past it (0: none)
ASYNCWORKER_HEADER_TIMEOUT      10         seconds to receive a whole request head (408)
ASYNCWORKER_BODY_TIMEOUT        30         idle seconds allowed while receiving a body (408)
ASYNCWORKER_MIN_REQUEST_RATE    240        bytes/s a request body must arrive at after the grace
                                           (408 and close below it; 0: not enforced)
ASYNCWORKER_MIN_RESPONSE_RATE   240        bytes/s a client must read a response at while the
                                           worker waits on it (closed below it; 0: not enforced)
ASYNCWORKER_RATE_GRACE          5          seconds before either rate is enforced, and the
                                           window each is measured over
ASYNCWORKER_DEBUG               0          tracebacks in 500 responses
ASYNCWORKER_SERVER_HEADER       asyncworker  the Server header ("" to send none)
ASYNCWORKER_ALLOWED_METHODS     (all)      comma-separated methods; others get 405
ASYNCWORKER_LOOP                auto       auto (uvloop if installed), uvloop or asyncio
                                           (default: gunicorn's asgi_loop)
ASYNCWORKER_TCP_KEEPALIVE       1          SO_KEEPALIVE on client connections (set on the
                                           listening sockets, which they inherit; 0: off there)
ASYNCWORKER_DEFER_ACCEPT        1          seconds a new client may take to send its first bytes
                                           before it is accepted anyway (TCP_DEFER_ACCEPT, set
                                           on the listening sockets, Linux; 0: accepted at once)
ASYNCWORKER_APP_KIND            auto       auto, wsgi, asgi or native: how to serve the app
ASYNCWORKER_LIFESPAN            auto       ASGI lifespan: auto (used if the app supports it),
                                           on (required: a failed startup stops gunicorn) or off
                                           (default: gunicorn's asgi_lifespan)
ASYNCWORKER_PROXY_HEADERS       off        from a peer in gunicorn's forwarded_allow_ips,
                                           read the client address: off (REMOTE_ADDR
                                           is the peer, as gunicorn), x-forwarded
                                           (X-Forwarded-For) or forwarded (RFC 7239);
                                           the scheme comes from secure_scheme_headers
                                           whatever this says
ASYNCWORKER_FORWARDED_HOST      0          1: with x-forwarded or forwarded, read the host
                                           too (X-Forwarded-Host/-Port or Forwarded host=);
                                           only behind a proxy that overwrites them
ASYNCWORKER_METRICS_BIND        (off)      HOST:PORT of a Prometheus endpoint (GET /metrics);
                                           the workers take the ports PORT to PORT+workers-1,
                                           one each (README, "Metrics")
ASYNCWORKER_HTTP2               0          1: serve HTTP/2 (TLS ALPN; cleartext prior knowledge
                                           where gunicorn has no http2_cleartext), as gunicorn's
                                           http_protocols = h2,h1 does (needs the h2 package)
ASYNCWORKER_PURE_PYTHON         0          1: the pure-Python references in place of the
                                           compiled helpers (server/protocol/compiled.py);
                                           read as gunicorn imports the worker class, so from
                                           gunicorn's own environment, not --env or raw_env
==============================  =========  ===========================================

``config.worker_config`` reads these together with gunicorn's settings.
``ASYNCWORKER_LOOP`` and ``ASYNCWORKER_LIFESPAN``, when set, win over gunicorn's
``asgi_loop`` and ``asgi_lifespan``, which otherwise give their defaults.
"""

import difflib
import os
from dataclasses import dataclass

from server.protocol.compiled import PURE_PYTHON_VARIABLE

PREFIX = "ASYNCWORKER_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_CHOICES = {"loop": ("auto", "uvloop", "asyncio"), "app_kind": ("auto", "wsgi", "asgi", "native"),
            "proxy_headers": ("x-forwarded", "forwarded", "off"), "lifespan": ("auto", "on", "off")}


class ConfigError(ValueError):
    """A bad ASYNCWORKER_* value: the message names the variable and what it takes."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    readpayload: bool = True
    spool_threshold: int = 1024 * 1024
    response_spool_memory: int = 1024 * 1024
    response_spool_max: int = 64 * 1024 * 1024
    response_spool_budget: int = 1024 * 1024 * 1024
    malloc_retain: int = 32 * 1024 * 1024
    gc_freeze: bool = True
    gc_threshold: int = 50000
    max_body_size: int = 0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    min_request_rate: float = 240.0
    min_response_rate: float = 240.0
    rate_grace: float = 5.0
    debug: bool = False
    server_header: str = "asyncworker"
    allowed_methods: frozenset | None = None
    loop: str = "auto"
    tcp_keepalive: bool = True
    defer_accept: int = 1
    app_kind: str = "auto"
    lifespan: str = "auto"
    proxy_headers: str = "off"
    forwarded_host: bool = False
    metrics_bind: str = ""  # "" (off) or "host:port"
    http2: bool = False

    @classmethod
    def from_env(cls, environ=os.environ, **defaults) -> "WorkerSettings":
        """The settings ``environ`` sets; ``defaults`` (gunicorn's ``asgi_loop``...)
        replace the class's defaults, and a variable that is set wins over them."""
        values = dict(defaults)
        for name, spec in cls.__dataclass_fields__.items():
            raw = environ.get(PREFIX + name.upper())
            if raw is not None:
                values[name] = _convert(name, raw, spec.default)
        settings = cls(**values)
        if settings.forwarded_host and settings.proxy_headers == "off":
            raise ConfigError(f"{PREFIX}FORWARDED_HOST=1 reads the host of a forwarding family: "
                              f"set {PREFIX}PROXY_HEADERS to x-forwarded or forwarded as well")
        return settings


def _convert(name: str, raw: str, default):
    raw = raw.strip()
    try:
        if name == "metrics_bind":
            return _bind_address(raw)
        if name == "allowed_methods":
            methods = frozenset(m.strip().upper() for m in raw.split(",") if m.strip())
            return methods or None
        if name in _CHOICES:
            if raw not in _CHOICES[name]:
                raise ValueError(raw)
            return raw
        if isinstance(default, bool):
            lowered = raw.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            value = int(raw)
        elif isinstance(default, float):
            value = float(raw)
        else:
            return raw
        if value < 0:
            raise ValueError(raw)
        return value
    except ValueError:
        raise ConfigError(f"Invalid value for {PREFIX}{name.upper()}: {raw!r} "
                          f"(expected {_expected(name, default)})") from None


def _bind_address(raw: str) -> str:
    """``host:port`` (``[v6]:port`` for IPv6) with a port from 1 to 65535, or "" (off)."""
    if not raw:
        return ""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(raw)
    return raw


def _expected(name: str, default) -> str:
    """What a variable takes, in words, for its error message."""
    if name == "metrics_bind":
        return "HOST:PORT, e.g. 127.0.0.1:9100, or empty for none"
    if name in _CHOICES:
        return "one of " + ", ".join(_CHOICES[name])
    if isinstance(default, bool):
        return "1 or 0 (or true/false, yes/no, on/off)"
    if isinstance(default, int):
        return "a whole number >= 0"
    if name.endswith("_rate"):
        return "a number of bytes per second >= 0"
    return "a number of seconds >= 0"


def known_variables() -> list[str]:
    return [PREFIX + name.upper() for name in WorkerSettings.__dataclass_fields__] + [PURE_PYTHON_VARIABLE]


def unknown_variables(environ=os.environ) -> list[str]:
    """Warnings for ASYNCWORKER_* variables this worker has no setting for (a typo
    would otherwise be ignored without a word), each with the closest known name."""
    known = known_variables()
    warnings = []
    for name in sorted(n for n in environ if n.startswith(PREFIX) and n not in known):
        # compared without the prefix, which every name shares
        close = difflib.get_close_matches(name.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in known], n=1)
        hint = f"did you mean {PREFIX}{close[0]}?" if close else "known ones: " + ", ".join(known)
        warnings.append(f"{name} is not a setting of this worker, ignored: {hint}")
    return warnings

