"""Which protocol serves the loaded app.

The worker loads the app the gunicorn way (``self.wsgi``) and asks here how to
serve it. Each kind of app is served by its own protocol subclass behind the
same ``ServerHttpProtocol`` core:

- ``native``: a ``server.web.Application`` (or a factory, sync or async, returning one);
- ``asgi``: an ASGI 3 callable ``app(scope, receive, send)`` (or an ASGI 2 double callable);
- ``wsgi``: anything else callable (PEP 3333).

``ASYNCWORKER_APP_KIND`` forces a kind where detection would guess wrong.
"""

import asyncio
from dataclasses import dataclass

from server.wsgi.environ import base_environ
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIServerHttpProtocol
from server.protocol.accesslog import access_log_enabled

from .config import server_config


async def _nothing() -> None:
    pass


@dataclass(slots=True)
class AppServing:
    """How the worker serves one app: a protocol per connection, plus the app's
    per-worker start and stop (``on_startup``/lifespan; a failing ``startup``
    stops the worker)."""

    kind: str
    protocol_factory: object
    startup: object = _nothing  # async () -> None
    shutdown: object = _nothing  # async () -> None, before the connections are closed
    close: object = None  # () -> None, last


async def serving_for(worker, app, kind: str = "auto") -> AppServing:
    kind = app_kind(app) if kind == "auto" else kind
    if kind == "native":
        from server.web.serving import native_serving
        return await native_serving(worker, app)
    if kind == "asgi":
        from server.asgi.serving import asgi_serving
        return await asgi_serving(worker, app)
    if kind == "wsgi":
        factory, cleanup = _wsgi_factory(worker, app)
        return AppServing("wsgi", factory, close=cleanup)
    raise ValueError(f"Unknown app kind {kind!r}: use auto, wsgi, asgi or native")


def app_kind(app) -> str:
    """Guess the kind of ``app``: "native", "asgi" or "wsgi"."""
    try:
        from server.web.detect import is_native_app
    except ImportError:
        pass
    else:
        if is_native_app(app):
            return "native"
    try:
        from server.asgi.detect import is_asgi_app
    except ImportError:
        pass
    else:
        if is_asgi_app(app):
            return "asgi"
    return "wsgi"


def _wsgi_factory(worker, app):
    config = worker.config
    settings = config.settings
    connection = server_config(config, worker.log)
    pool = ThreadPool(worker.loop, config.threads, log=worker.log)
    wsgi = WSGIConfig(
        app=app,
        pool=pool,
        environ=base_environ(
            multithread=config.threads > 1,
            multiprocess=config.multiprocess,
            file_wrapper=FileWrapper,
            script_name=config.script_name,
        ),
        log=worker.log,
        readpayload=settings.readpayload,
        spool_threshold=settings.spool_threshold,
        tmp_dir=config.tmp_upload_dir,
        server_header=connection.server_header,
        debug=settings.debug,
        access_log=access_log_enabled(worker.log),
        sendfile=config.sendfile and _loop_has_sendfile(worker.loop),
        worker=worker,
        hooks=config.request_hooks,
    )

    def factory():
        return WSGIServerHttpProtocol(wsgi, connection, loop=worker.loop, owner=worker)

    return factory, pool.shutdown


def _loop_has_sendfile(loop) -> bool:
    return type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile
