"""How the worker serves an ASGI app: the protocol factory and the lifespan.

``asgi_serving(worker, app)`` is called by ``server.workers.apps.serving_for``
when the app is (or is forced to be) ASGI. Startup runs the lifespan; a
failed startup logs one clear line and exits the worker with gunicorn's
``WORKER_BOOT_ERROR`` status, so the arbiter halts rather than respawning it.
"""

from gunicorn.arbiter import Arbiter

from server.protocol.accesslog import access_log_enabled
from server.workers.apps import AppServing, _loop_has_sendfile
from server.workers.config import server_config

from .detect import as_asgi3
from .lifespan import Lifespan, LifespanFailure
from .protocol import ASGIConfig, ASGIServerHttpProtocol


async def asgi_serving(worker, app) -> AppServing:
    config = worker.config
    connection = server_config(config, worker.log)
    app3, version = as_asgi3(app)
    asgi = ASGIConfig(
        app=app3,
        log=worker.log,
        asgi_version=version,
        root_path=config.script_name,
        server_header=connection.server_header,
        access_log=access_log_enabled(worker.log),
        sendfile=config.sendfile and _loop_has_sendfile(worker.loop),
        ws_max_message_size=config.ws_max_message_size,
    )
    lifespan = Lifespan(app3, config.settings.lifespan, worker.log, asgi.state, version)

    async def startup() -> None:
        try:
            await lifespan.startup()
        except LifespanFailure as exc:
            worker.log.error("ASGI lifespan startup failed, stopping the worker: %s", exc)
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from None

    async def shutdown() -> None:
        await lifespan.shutdown(timeout=config.graceful_timeout)

    def factory():
        return ASGIServerHttpProtocol(asgi, connection, loop=worker.loop, owner=worker)

    return AppServing("asgi", factory, startup=startup, shutdown=shutdown)
