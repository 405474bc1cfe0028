"""The ASGI app kind: ``ASGIConnection``, one per connection, and ``ASGIServerHttpProtocol``.

    on_request(head) ──► HttpExchange (http scope)      ──task──► app
                    └──► WebSocket upgrade (websocket scope) ──task──► app

Each request runs the app in a task of its own; the connection answers one
request at a time (pipelined requests wait for the response before theirs).
The body sink is the exchange's ``RequestBody``; the client going away reaches
the running exchange through ``on_disconnect``, its end of input through
``on_input_end``. What the scope takes from the
connection (the server address; without a proxy policy the client and the
scheme too) is worked out once per connection.
"""

from dataclasses import dataclass, field

from server.protocol.seam import AppConnection
from server.protocol.server import ServerHttpProtocol
from server.websocket import is_upgrade_request

from .exchange import HttpExchange
from .scope import scope_client, server_address
from .websocket import start_websocket


@dataclass(slots=True)
class ASGIConfig:
    app: object  # an ASGI 3 callable
    log: object
    asgi_version: str = "3.0"
    root_path: str = ""
    state: dict = field(default_factory=dict)  # filled by the lifespan startup, copied per request
    ws_max_message_size: int = 16 * 1024 * 1024  # bytes (close 1009 past it)
    ws_ping_interval: float | None = 20.0  # keep-alive pings; no pong within as long: close 1011
    tasks: set = field(default_factory=set)  # running app tasks (strong references)
    # The scope's pieces made last in this worker, by the identity of what they are made of
    # (an HTTP/2 connection's streams, each with an ASGIConnection of its own, share them):
    last_peer: tuple | None = None  # (Forwarded, (client, scheme))
    last_server: tuple | None = None  # (sockname, server)

    def spawn(self, loop, coro):
        task = loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


class ASGIConnection(AppConnection):
    """The ASGI app kind's side of one connection."""

    __slots__ = ("asgi", "_scope_server", "_scope_peer")

    def __init__(self, asgi: ASGIConfig, channel):
        self.channel = channel  # (AppConnection's own __init__, inline: a call less per connection)
        self.asgi = asgi
        self._scope_server = None  # the scope's "server", once known
        self._scope_peer = None  # (Forwarded, (client, scheme)) of the last request

    def on_request(self, head):
        channel = self.channel
        if head.upgrade and is_upgrade_request(head):
            channel.exchange = start_websocket(self, head, self.asgi)
            return None
        asgi = self.asgi
        exchange = HttpExchange(channel, head, asgi)
        channel.exchange = exchange
        # One task per request (the app may rely on current_task(), its own
        # contextvars and cancellation); the exchange drops the task from the
        # set of strong references when the app returns.
        server = self._scope_server or self.scope_server()  # (made once per connection)
        exchange.task = task = channel.start_task(exchange.run(self.scope_peer(head), server))
        asgi.tasks.add(task)
        return exchange.body if head.has_body else None

    def scope_peer(self, head) -> tuple:
        """The scope's ``(client, scheme)`` for ``head``: a trusted proxy's, or the
        connection's own (the same for every request that forwards nothing: made once)."""
        known = self.channel.request_forwarded  # (what forwarded(head) looks at first, here: a call less)
        forwarded = known[1] if known is not None and known[0] is head else self.channel.forwarded(head)
        cached = self._scope_peer or self.asgi.last_peer
        if cached is not None and cached[0] is forwarded:
            return cached[1]
        peer = (scope_client(forwarded.client), forwarded.scheme)
        self._scope_peer = self.asgi.last_peer = (forwarded, peer)
        return peer

    def scope_server(self):
        """The scope's ``server``: the listening address (made once for the connections on one
        address: each new connection has a sockname of its own, equal to the last's)."""
        server = self._scope_server
        if server is None:
            sockname = self.channel.sockname
            cached = self.asgi.last_server
            if cached is not None and cached[0] == sockname:
                server = cached[1]
            else:
                server = server_address(sockname)
                self.asgi.last_server = (sockname, server)
            self._scope_server = server
        return server

    def on_input_end(self) -> None:
        """EOF from the client during a request: the app learns it (``http.disconnect``) at once.

        A client that only shut its sending side still gets the response; one that
        closed its socket makes the next write fail, and ``send()`` raises then.
        """
        exchange = self.channel.exchange
        if exchange is not None:
            exchange.peer_closed()

    def on_disconnect(self) -> None:
        channel = self.channel
        exchange, channel.exchange = channel.exchange, None
        if exchange is not None:
            exchange.disconnected()


class ASGIServerHttpProtocol(ServerHttpProtocol):
    """A connection serving an ASGI app: ``ServerHttpProtocol`` with the ASGI kind plugged in."""

    __slots__ = ("asgi",)

    def __init__(self, asgi: ASGIConfig, config, loop=None, owner=None):
        self.asgi = asgi  # (the kind made here: see WSGIServerHttpProtocol)
        ServerHttpProtocol.__init__(self, config, None, loop=loop, owner=owner)
        self.app = self.new_kind()

    def new_kind(self) -> ASGIConnection:
        return ASGIConnection(self.asgi, self)
