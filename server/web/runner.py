"""``web.run_app``: serve an app without gunicorn, for development, as in aiohttp.

    run_app(app, host="127.0.0.1", port=8080)
        loop (uvloop when installed) ──► resolve the app (a factory, a coroutine)
        ──► app.startup() ──► listen: loop.create_server(WebServerHttpProtocol, ...)
        ──► serve until SIGINT/SIGTERM (Ctrl-C)
        ──► stop listening, close idle connections, let busy ones finish their
            response (at most ``shutdown_timeout`` seconds), on_shutdown, cancel
            leftover handlers, cleanups; close what is left

One process, one loop: the same connections, protocol and app code as a
gunicorn worker, without its settings, signals or worker restarts. Use gunicorn
(``-k server.workers.AsyncWorker``) in production.
"""

import asyncio
import inspect
import logging
import signal
import socket

from server.protocol.config import ServerConfig

from . import serving
from .protocol import WebContext, WebServerHttpProtocol

log = logging.getLogger("server.web")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DevServer:
    """The listening sockets and connections of one ``run_app``; the protocols' owner."""

    def __init__(self, app, config: ServerConfig):
        self.app = app
        self.config = serving.debug_config(app, config)
        self.context = WebContext(app=app, log=config.log)
        self.connections: set = set()
        self.servers: list = []
        self.closing = False

    def protocol(self) -> WebServerHttpProtocol:
        return WebServerHttpProtocol(self.context, self.config, loop=asyncio.get_running_loop(), owner=self)

    def connection_opened(self, conn) -> None:
        self.connections.add(conn)
        if self.closing:
            conn.closing()

    def connection_closed(self, conn) -> None:
        self.connections.discard(conn)

    def request_done(self) -> None:
        pass

    async def listen(self, *, host=None, port=None, path=None, sock=None, ssl_context=None, backlog=128,
                     reuse_address=None, reuse_port=None) -> list[str]:
        """Start listening; the URLs served (one per listening socket)."""
        loop = asyncio.get_running_loop()
        options = {"ssl": ssl_context, "backlog": backlog}
        if sock is not None:
            server = await loop.create_server(self.protocol, sock=sock, **options)
        elif path is not None:
            server = await loop.create_unix_server(self.protocol, path, **options)
        else:
            server = await loop.create_server(self.protocol, host, port, reuse_address=reuse_address,
                                              reuse_port=reuse_port, **options)
        self.servers.append(server)
        scheme = "https" if ssl_context is not None else "http"
        return [_url(scheme, s) for s in server.sockets]

    async def stop(self, timeout: float) -> None:
        """Stop listening, then let the connections finish (at most ``timeout`` seconds)."""
        self.closing = True
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.closing()
        deadline = asyncio.get_running_loop().time() + timeout
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self.connections:
            log.warning("Shutdown timeout: closing %d connections", len(self.connections))

    def close(self) -> None:
        for conn in list(self.connections):
            conn.close()


def _url(scheme: str, sock: socket.socket) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"{scheme}://unix:{address}:"
    host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
    return f"{scheme}://{host}:{address[1]}"


def run_app(app, *, host=None, port: int | None = None, path=None, sock=None, shutdown_timeout: float = 60.0,
            keepalive_timeout: float = 75.0, ssl_context=None, print=print, backlog: int = 128,
            handle_signals: bool = True, reuse_address: bool | None = None, reuse_port: bool | None = None,
            loop_factory=None) -> None:
    """Serve ``app`` (an Application, a factory of one, or a coroutine giving one) until
    SIGINT/SIGTERM. Without ``host``, ``path`` or ``sock``: 0.0.0.0, port 8080 (8443 with TLS)."""
    if host is None and path is None and sock is None:
        host = "0.0.0.0"
    if port is None and path is None and sock is None:
        port = 8443 if ssl_context is not None else 8080
    listen = {"host": host, "port": port, "path": path, "sock": sock, "ssl_context": ssl_context,
              "backlog": backlog, "reuse_address": reuse_address, "reuse_port": reuse_port}
    config = ServerConfig(keepalive=keepalive_timeout, scheme="https" if ssl_context is not None else "http",
                          log=log)
    with asyncio.Runner(loop_factory=loop_factory or _new_event_loop) as runner:
        try:
            runner.run(_serve(app, config, listen, shutdown_timeout, print, handle_signals))
        except KeyboardInterrupt:  # without handle_signals, Ctrl-C cancelled the serving
            pass


async def _serve(app, config: ServerConfig, listen: dict, shutdown_timeout: float, print, handle_signals) -> None:
    if inspect.isawaitable(app):
        app = await app
    app = await serving.resolve_app(app)
    server = DevServer(app, config)
    stopping = asyncio.Event()
    if handle_signals:
        _on_stop_signals(stopping.set)
    try:
        await app.startup()
        urls = await server.listen(**listen)
        if print is not None:
            print("".join(f"======== Running on {url} ========\n" for url in urls) + "(Press CTRL+C to quit)")
        await stopping.wait()
    finally:
        await _stop(server, shutdown_timeout)


async def _stop(server: DevServer, timeout: float) -> None:
    try:
        await server.stop(timeout)
        await serving.shutdown(server.app, server.context)
    finally:
        server.close()


def _on_stop_signals(callback) -> None:
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, callback)
        except (NotImplementedError, RuntimeError):  # no signal handlers here (Windows, a thread)
            pass


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
