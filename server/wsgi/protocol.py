"""The WSGI app kind: ``WSGIConnection``, one per connection, and ``WSGIServerHttpProtocol``.

For each request head the connection side creates a ``WSGIExchange`` and chooses
the body sink of the configured mode (see ``body.py``): by default the body is
spooled by the loop and the app is dispatched when it is complete; with
``readpayload`` off the app is dispatched at once with a blocking ``wsgi.input``.
"""

import collections
import threading
from dataclasses import dataclass, field

from multidict import istr

from server.protocol.caches import remember
from server.protocol.copies import COPIES_COMPILED, copy_of
from server.protocol.seam import AppConnection
from server.protocol.server import ServerHttpProtocol

from .body import BlockingInput, SpooledBody
from .environ import client_environ, server_environ
from .exchange import WSGIExchange

DEFAULT_SPOOL_THRESHOLD = 1024 * 1024
SERVER_ENVIRONS = 256  # server layers of the environ a worker keeps (one per Host, scheme, address)
_MAKING_CONDITION = threading.Lock()  # a connection's exchange condition is made once, by either thread
# (istr: CIMultiDict reuses their case-folded form and hash, a lookup in a third of the time)
_CONTENT_LENGTH = istr("Content-Length")
_HOST = istr("Host")


@dataclass(slots=True)
class WSGIConfig:
    """What the WSGI connections of one worker share (the rest is in ``ServerConfig``)."""

    app: object
    pool: object  # ThreadPool
    environ: dict  # base environ (see environ.base_environ)
    log: object
    readpayload: bool = True
    spool_threshold: int = DEFAULT_SPOOL_THRESHOLD
    tmp_dir: str | None = None
    # The worker's exchanges dispatched (counted by the loop) and answered (an append by each
    # app thread as its answer goes: atomic under the GIL, no lock). When every one dispatched
    # is answered, the next is dispatched alone, and only then does its thread write its whole
    # answer itself (protocol/lease.py): under load the loop is awake anyway and writes the
    # answers of one pass together, and a lease costs a dup and a close per request
    # (measured: 0.88x at c=50 with a lease for every request).
    dispatched: int = 0
    answers: collections.deque = field(default_factory=collections.deque)
    # The server layers of the environ (environ.server_environ) by (scheme, Host, listening
    # address): most connections of a worker share one (a client layer made whole cost 7.7k
    # instructions, 5% of a request on a connection of its own). Read and filled by the app
    # threads (the Host is the client's: a bounded cache, emptied when full).
    server_environs: dict = field(default_factory=dict)
    # What each request's exchange is a copy of (WSGIExchange.template), where the slot copy
    # is compiled (its Python reference is slower than the exchange's own __init__).
    exchange_template: WSGIExchange | None = field(init=False)

    def __post_init__(self):
        self.exchange_template = WSGIExchange.template(self) if COPIES_COMPILED else None

    def new_server_environ(self, key: tuple) -> dict:
        """The server layer of ``key``, ``(url_scheme, Host, listening address)``, made and kept
        (asked when ``server_environs`` has none)."""
        url_scheme, host, sockname = key
        return remember(self.server_environs, key, server_environ(self.environ, sockname, url_scheme, host),
                        SERVER_ENVIRONS)


class WSGIConnection(AppConnection):
    """The WSGI app kind's side of one connection."""

    __slots__ = ("wsgi", "made_condition", "_client_environ")

    runs_hooks = True  # gunicorn's request hooks run on the app thread, around the app
    reads_while_running = False  # (an app thread cannot be told the client left)

    def __init__(self, wsgi: WSGIConfig, channel):
        self.channel = channel  # (AppConnection's own __init__, inline: a call less per connection)
        self.wsgi = wsgi
        self.made_condition: threading.Condition | None = None  # the exchange condition, once made
        self._client_environ: tuple | None = None  # (forwarded, host, environ.client_environ)

    @property
    def exchange_condition(self) -> threading.Condition:
        """What a response's body hand-over between its app thread and the loop waits and
        locks on (spool.py), made at its first use by either thread: most connections never
        use it (a whole response is handed over without it), and making a Condition costs
        8.5k instructions, against 108.5k for a whole hello request. (Over an RLock, the
        default: made in a third of the time a Condition over a Lock takes, which looks for
        the RLock's methods on it and fails.)"""
        condition = self.made_condition
        if condition is None:
            with _MAKING_CONDITION:
                condition = self.made_condition
                if condition is None:
                    condition = self.made_condition = threading.Condition()
        return condition

    def on_request(self, head):
        channel = self.channel
        template = self.wsgi.exchange_template
        if template is not None:  # (WSGIExchange(self, head, self.wsgi), without its __init__'s call)
            exchange = copy_of(template)
            exchange.protocol = channel
            exchange.connection = self
            exchange.head = head
        else:
            exchange = WSGIExchange(self, head, self.wsgi)
        channel.exchange = exchange
        if not head.has_body:
            exchange.dispatch(None, 0 if _CONTENT_LENGTH in head.headers else None)
            return None
        if not self.wsgi.readpayload:
            wsgi_input = BlockingInput(channel, self.wsgi.pool)
            exchange.dispatch(wsgi_input, head.content_length)
            return wsgi_input
        # The server reads the body for the app, so an expected 100 Continue goes now.
        channel.send_continue()
        return SpooledBody(self.wsgi.spool_threshold, self.wsgi.tmp_dir, exchange.dispatch)

    def client_environ(self, head, forwarded) -> dict:
        """The client layer of the environ (see environ.py), made again only when the
        client, scheme or Host differ from the previous request's (called by the
        exchange's thread: the exchanges of a connection do not overlap). Most requests of a
        connection share one ``Forwarded`` (the peer's own), looked at by identity first."""
        host = forwarded.host
        if host is None:
            host = head.headers.get(_HOST)
        cached = self._client_environ
        if cached is not None and cached[1] == host:
            known = cached[0]
            if known is forwarded or (known.client == forwarded.client and known.scheme == forwarded.scheme):
                return cached[2]
        key = (forwarded.scheme, host, self.channel.sockname)
        server = self.wsgi.server_environs.get(key) or self.wsgi.new_server_environ(key)
        environ = client_environ(server, forwarded.client)
        self._client_environ = (forwarded, host, environ)
        return environ

    def on_disconnect(self) -> None:
        if self.channel.exchange is not None:
            self.channel.exchange.abort()

    def on_pause_writing(self) -> None:
        if self.channel.exchange is not None:
            self.channel.exchange.pause()

    def on_resume_writing(self) -> None:
        if self.channel.exchange is not None:
            self.channel.exchange.resume()


class WSGIServerHttpProtocol(ServerHttpProtocol):
    """A connection serving a WSGI app: ``ServerHttpProtocol`` with the WSGI kind plugged in."""

    __slots__ = ("wsgi",)

    def __init__(self, wsgi: WSGIConfig, config, loop=None, owner=None):
        # (the kind made here, not by a partial made per connection, nor passed through **kwargs:
        # each would cost a call and a dict for every new connection)
        self.wsgi = wsgi
        ServerHttpProtocol.__init__(self, config, None, loop=loop, owner=owner)
        self.app = self.new_kind()

    def new_kind(self) -> WSGIConnection:
        return WSGIConnection(self.wsgi, self)
