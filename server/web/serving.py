"""What serving a native app takes, from plain values.

    factory? ──call (await if async)──► Application          resolve_app(app)
    per connection: WebServerHttpProtocol(context, config)   debug_config(app, config)
    startup: on_startup, cleanup_ctx (first halves)          app.startup()
    shutdown: on_shutdown, cancel leftover handlers,         shutdown(app, context)
              cleanup_ctx (second halves), on_cleanup

The worker (``server.workers.apps``) wires these to its connections.
"""

import dataclasses
import inspect

from server.protocol.server import ServerConfig

from .app import Application
from .protocol import WebContext


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


def debug_config(app: Application, config: ServerConfig) -> ServerConfig:
    """``config``, with tracebacks in 500 pages when the app asks for them (``Application(debug=True)``)."""
    return dataclasses.replace(config, debug=True) if app.debug else config


async def shutdown(app: Application, context: WebContext) -> None:
    """Stop the app: on_shutdown, then the handlers still running are cancelled, then the cleanups."""
    try:
        await app.shutdown()
    finally:
        await context.cancel_handlers()
        await app.cleanup()
