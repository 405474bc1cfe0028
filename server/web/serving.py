"""How AsyncWorker serves a native app: ``native_serving(worker, app) -> AppServing``.

    factory? ──call (await if async)──► Application
    startup: on_startup, cleanup_ctx (first halves)
    per connection: WebServerHttpProtocol(context, server_config(worker.config, worker.log))
    shutdown: on_shutdown, cancel leftover handlers, cleanup_ctx (second halves), on_cleanup
"""

import dataclasses
import inspect

from server.protocol.accesslog import access_log_enabled
from server.workers.apps import AppServing
from server.workers.config import server_config

from .app import Application
from .protocol import WebContext, WebServerHttpProtocol


async def resolve_app(app) -> Application:
    """The Application itself, or what a (sync or async) factory returns."""
    if isinstance(app, Application):
        return app
    result = app()
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, Application):
        raise TypeError(f"App factory {app!r} returned {result!r}, not a server.web.Application")
    return result


async def native_serving(worker, app) -> AppServing:
    app = await resolve_app(app)
    config = server_config(worker.config, worker.log)
    if app.debug:  # Application(debug=True): tracebacks in 500 pages, as ASYNCWORKER_DEBUG=1 does
        config = dataclasses.replace(config, debug=True)
    context = WebContext(
        app=app,
        log=worker.log,
        access_log=access_log_enabled(worker.log),
        tmp_dir=worker.config.tmp_upload_dir,
        sendfile=worker.config.sendfile,
    )
    loop = worker.loop

    def protocol_factory():
        return WebServerHttpProtocol(context, config, loop=loop, owner=worker)

    async def startup() -> None:
        await app.startup()

    async def shutdown() -> None:
        try:
            await app.shutdown()
        finally:
            await context.cancel_handlers()
            await app.cleanup()

    return AppServing("native", protocol_factory, startup=startup, shutdown=shutdown)
