"""ServerConfig: what every connection of a worker shares, whatever the app kind."""

from dataclasses import dataclass, field

from .heads import HeadCache
from .lease import LeaseKeeper
from .limits import Limits
from .spool import SpoolBudget
from .timers import FirstWaits


@dataclass(slots=True)
class ServerConfig:
    """What every connection of a worker shares, whatever the app kind."""

    limits: Limits = field(default_factory=Limits)
    keepalive: float = 2.0  # gunicorn's keepalive: idle seconds between requests; 0 = no keep-alive
    head_timeout: float = 10.0  # seconds to receive a whole request head (408)
    body_timeout: float = 30.0  # idle seconds while receiving a body (408)
    tcp_keepalive: bool = True
    allowed_methods: frozenset | None = None  # others get 405
    debug: bool = False  # tracebacks in 500 pages
    server_header: bytes = b"asyncworker"
    scheme: str = "http"  # "https" on TLS listeners
    proxy: object = None  # a forwarded.ProxyPolicy: forwarded headers and the PROXY protocol
    refuse_underscores: bool = False  # gunicorn's header_map = refuse: a field name with "_" gets a 400
    log: object = None  # a gunicorn Logger (or anything with debug/info/warning/exception)
    # Call log.access(...) once per request: for an access log, and for a logger whose
    # access() sends metrics (gunicorn's statsd logger) with or without one.
    access_log: bool = False
    # Minimum data rates (rates.py), in bytes/s after rate_grace seconds; 0: not enforced.
    min_request_rate: float = 240.0  # of a request body: slower gets a 408 and a close
    min_response_rate: float = 240.0  # of a client reading a response: slower is closed
    rate_grace: float = 5.0
    hooks: object = None  # accesslog.RequestHooks when gunicorn's pre_request or post_request is set
    sendfile: bool = True  # gunicorn's sendfile: files go by the kernel's sendfile from the loop (protocol/files.py)
    # Response spools (spool.py): a body an app thread produces faster than its client reads
    # waits here, in memory up to response_spool_memory bytes, then in a temporary file in
    # spool_dir (gunicorn's tmp_upload_dir; None: the system's); at most response_spool_max
    # bytes per response (0: no spooling) and response_spool_budget over the worker's.
    response_spool_memory: int = 1024 * 1024
    response_spool_max: int = 64 * 1024 * 1024
    response_spool_budget: int = 1024 * 1024 * 1024
    spool_dir: str | None = None
    heads: HeadCache = field(init=False)  # the response heads already checked (one per worker)
    spool_budget: SpoolBudget = field(init=False)  # the bytes spooled by the worker (in_use: its gauge)
    lease_keeper: LeaseKeeper = field(init=False)  # the one connection keeping a socket lease (lease.py)
    first_waits: FirstWaits = field(init=False)  # new connections waiting for their first bytes (timers.py)

    def __post_init__(self):
        self.heads = HeadCache(self.server_header)
        self.spool_budget = SpoolBudget(self.response_spool_budget)
        self.lease_keeper = LeaseKeeper()
        self.first_waits = FirstWaits(self.head_timeout)
