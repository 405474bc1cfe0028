"""Which protocol serves the loaded app.

The worker loads the app the gunicorn way (``self.wsgi``) and asks here how to
serve it. Each kind of app is served by its own protocol subclass behind the
same ``ServerHttpProtocol`` core:

- ``native``: a ``server.web.Application`` (or a factory, sync or async, returning one);
- ``asgi``: an ASGI 3 callable ``app(scope, receive, send)`` (or an ASGI 2 double callable);
- ``wsgi``: anything else callable (PEP 3333).

``ASYNCWORKER_APP_KIND`` forces a kind where detection would guess wrong.
An app to be served as WSGI whose signature cannot take ``(environ,
start_response)`` (a function of no argument, or of one) is refused at boot.

Each builder (``wsgi_serving``, ``asgi_serving``, ``native_serving``) takes its
values from the worker's ``WorkerConfig`` and hands plain values to its app
layer, which knows nothing of gunicorn.
"""

import inspect
from dataclasses import dataclass
from functools import partial

from gunicorn.arbiter import Arbiter

from server.protocol.server import connection_factory
from server.protocol.uwsgi_connection import uwsgi_protocol
from server.wsgi.environ import base_environ
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIConnection, WSGIServerHttpProtocol

from .config import server_config
from .errorlog import ErrorLogStream


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
    app_threads: object = None  # the WSGI pool: new clients wait while it has a backlog (listeners.py)


def boot_error(log, message: str, *args) -> None:
    """Stop the worker with gunicorn's ``WORKER_BOOT_ERROR`` status, so the arbiter
    halts rather than respawning it again and again."""
    log.error(message, *args)
    raise SystemExit(Arbiter.WORKER_BOOT_ERROR)


async def serving_for(worker, app, kind: str = "auto") -> AppServing:
    kind = app_kind(app) if kind == "auto" else kind
    if kind == "wsgi":
        refuse_unfit_wsgi(worker.log, app)
    if kind == "native":
        return await native_serving(worker, app)
    if kind == "asgi":
        return asgi_serving(worker, app)
    if kind == "wsgi":
        return wsgi_serving(worker, app)
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


def wsgi_signature_problem(app) -> str | None:
    """Why ``app`` cannot be called as ``app(environ, start_response)``; None when it
    can, or when its signature cannot be read (it might)."""
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(None, None)
    except TypeError:
        return f"it takes {signature}, not (environ, start_response)"
    return None


def refuse_unfit_wsgi(log, app) -> None:
    """Refuse at boot, not at the first request, an app no kind can serve."""
    problem = wsgi_signature_problem(app)
    if problem is not None:
        name = getattr(app, "__qualname__", type(app).__qualname__)
        boot_error(log, "The app %s fits no app kind, stopping the worker: %s. A WSGI app takes "
                   "(environ, start_response), an ASGI app (scope, receive, send), a native app factory "
                   "no argument and is marked @app_factory or annotated '-> Application'; "
                   "ASYNCWORKER_APP_KIND forces a kind", name, problem)


def connection_class(cls: type, config, kind=None, server=None) -> type:
    """``cls``, or the same connection reading uwsgi packets when gunicorn's protocol is uwsgi,
    or serving HTTP/2 too (its streams answered by the app ``kind``) when HTTP/2 is on."""
    if config.uwsgi_allow_ips is not None:
        return uwsgi_protocol(cls, config.uwsgi_allow_ips)
    if config.http2 is None or kind is None:
        return cls
    from server.http2.selection import H2Service, h2_protocol

    return h2_protocol(cls, H2Service.make(kind, server, config.http2))


def wsgi_serving(worker, app) -> AppServing:
    """A PEP 3333 app, called in a pool of gunicorn's ``threads`` threads."""
    config = worker.config
    settings = config.settings
    connection = server_config(config, worker.log, worker)
    pool = ThreadPool(worker.loop, config.threads, log=worker.log)
    wsgi = WSGIConfig(
        app=app,
        pool=pool,
        environ=base_environ(
            multithread=config.threads > 1,
            multiprocess=config.multiprocess,
            file_wrapper=FileWrapper,
            errors=ErrorLogStream(),
            script_name=config.script_name,
        ),
        log=worker.log,
        readpayload=settings.readpayload,
        spool_threshold=settings.spool_threshold,
        tmp_dir=config.tmp_upload_dir,
    )

    protocol = connection_class(WSGIServerHttpProtocol, config, partial(WSGIConnection, wsgi), connection)

    # (positional: a class called with keywords makes a dict)
    factory = connection_factory(protocol, wsgi, connection, worker.loop, worker)
    return AppServing("wsgi", factory, close=pool.shutdown, app_threads=pool)


def asgi_serving(worker, app) -> AppServing:
    """An ASGI app on the loop, with its lifespan around serving.

    A failed lifespan startup exits the worker with gunicorn's ``WORKER_BOOT_ERROR``
    status (``boot_error``).
    """
    from server.asgi.lifespan import LifespanFailure
    from server.asgi.protocol import ASGIConnection, ASGIServerHttpProtocol
    from server.asgi.serving import asgi_config, lifespan_of

    config = worker.config
    connection = server_config(config, worker.log, worker)
    asgi = asgi_config(app, worker.log, root_path=config.script_name, ws_max_message_size=config.ws_max_message_size)
    lifespan = lifespan_of(asgi, config.settings.lifespan)

    async def startup() -> None:
        try:
            await lifespan.startup()
        except LifespanFailure as exc:
            boot_error(worker.log, "ASGI lifespan startup failed, stopping the worker: %s", exc)

    async def shutdown() -> None:
        await lifespan.shutdown(timeout=config.graceful_timeout)

    protocol = connection_class(ASGIServerHttpProtocol, config, partial(ASGIConnection, asgi), connection)

    factory = connection_factory(protocol, asgi, connection, worker.loop, worker)

    return AppServing("asgi", factory, startup=startup, shutdown=shutdown)


async def native_serving(worker, app) -> AppServing:
    """A ``server.web.Application`` (or a factory of one) on the loop, with no thread hop."""
    from server.web import serving
    from server.web.protocol import WebConnection, WebContext, WebServerHttpProtocol

    app = await serving.resolve_app(app)
    config = worker.config
    connection = serving.debug_config(app, server_config(config, worker.log, worker))
    context = WebContext(app=app, log=worker.log, tmp_dir=config.tmp_upload_dir)
    loop = worker.loop
    protocol = connection_class(WebServerHttpProtocol, config, partial(WebConnection, context), connection)

    factory = connection_factory(protocol, context, connection, loop, worker)

    async def startup() -> None:
        await app.startup()

    async def shutdown() -> None:
        await serving.shutdown(app, context)

    return AppServing("native", factory, startup=startup, shutdown=shutdown)
