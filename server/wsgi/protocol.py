"""WSGIServerHttpProtocol: ServerHttpProtocol serving a PEP 3333 app from a thread pool.

For each request head the protocol creates a ``WSGIExchange`` and chooses the
body sink of the configured mode (see ``body.py``): by default the body is
spooled by the loop and the app is dispatched when it is complete; with
``readpayload`` off the app is dispatched at once with a blocking ``wsgi.input``.
"""

import threading
from dataclasses import dataclass

from server.protocol.server import ServerHttpProtocol

from .body import BlockingInput, SpooledBody
from .environ import client_environ
from .exchange import WSGIExchange

DEFAULT_SPOOL_THRESHOLD = 1024 * 1024


@dataclass(slots=True)
class WSGIConfig:
    app: object
    pool: object  # ThreadPool
    environ: dict  # base environ (see environ.base_environ)
    log: object
    readpayload: bool = True
    spool_threshold: int = DEFAULT_SPOOL_THRESHOLD
    tmp_dir: str | None = None
    server_header: bytes = b""
    debug: bool = False
    access_log: bool = False
    sendfile: bool = True  # only used where the loop implements sendfile
    worker: object = None  # passed to gunicorn's request hooks
    hooks: object = None  # RequestHooks when the user set pre_request or post_request


@dataclass(frozen=True, slots=True)
class RequestHooks:
    """gunicorn's pre_request/post_request hooks; None where left at gunicorn's default."""

    pre_request: object
    post_request: object


class WSGIServerHttpProtocol(ServerHttpProtocol):
    def __init__(self, wsgi: WSGIConfig, config, **kwargs):
        super().__init__(config, **kwargs)
        self.wsgi = wsgi
        self.exchange_condition = threading.Condition(threading.Lock())
        self._client_environ: tuple | None = None  # ((client, scheme, host), environ.client_environ)

    def on_request(self, head):
        exchange = self.exchange = WSGIExchange(self, head, self.wsgi)
        if not head.has_body:
            exchange.dispatch(None, 0 if "Content-Length" in head.headers else None)
            return None
        if not self.wsgi.readpayload:
            wsgi_input = BlockingInput(self, self.wsgi.pool)
            exchange.dispatch(wsgi_input, head.content_length)
            return wsgi_input
        # The server reads the body for the app, so an expected 100 Continue goes now.
        self.send_continue()
        return SpooledBody(self.wsgi.spool_threshold, self.wsgi.tmp_dir, exchange.dispatch)

    def client_environ(self, head, forwarded) -> dict:
        """The client layer of the environ (see environ.py), made again only when the
        client, scheme or Host differ from the previous request's (called by the
        exchange's thread: the exchanges of a connection do not overlap)."""
        host = forwarded.host if forwarded.host is not None else head.headers.get("Host")
        key = (forwarded.client, forwarded.scheme, host)
        cached = self._client_environ
        if cached is None or cached[0] != key:
            environ = client_environ(self.wsgi.environ, peername=forwarded.client, sockname=self.sockname,
                                     url_scheme=forwarded.scheme, host=host)
            cached = self._client_environ = (key, environ)
        return cached[1]

    def on_disconnect(self) -> None:
        if self.exchange is not None:
            self.exchange.abort()

    def on_pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause()

    def on_resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume()
