"""How the worker serves an ASGI app: the protocol factory and the lifespan.

``asgi_serving(worker, app)`` is called by ``server.workers.apps.serving_for``
when the app is (or is forced to be) ASGI. Startup runs the lifespan; a
failed startup logs one clear line and exits the worker with gunicorn's
``WORKER_BOOT_ERROR`` status, so the arbiter halts rather than respawning it.
"""

from gunicorn.arbiter import Arbiter

from server.workers.apps import AppServing, _script_name

from .detect import as_asgi3
from .lifespan import Lifespan, LifespanFailure
from .protocol import ASGIConfig, ASGIServerHttpProtocol


async def asgi_serving(worker, app) -> AppServing:
    cfg = worker.cfg
    server_config = worker.server_config()
    app3, version = as_asgi3(app)
    asgi = ASGIConfig(
        app=app3,
        log=worker.log,
        asgi_version=version,
        root_path=_script_name(cfg),
        ws_max_message_size=getattr(cfg, "websocket_max_message_size", None) or 16 * 1024 * 1024,
    )
    mode = getattr(worker.settings, "lifespan", "auto")
    lifespan = Lifespan(app3, mode, worker.log, asgi.state, version)

    async def startup() -> None:
        try:
            await lifespan.startup()
        except LifespanFailure as exc:
            worker.log.error("ASGI lifespan startup failed, stopping the worker: %s", exc)
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from None

    async def shutdown() -> None:
        await lifespan.shutdown(timeout=float(cfg.graceful_timeout))

    def factory():
        return ASGIServerHttpProtocol(asgi, server_config, loop=worker.loop, owner=worker)

    return AppServing("asgi", factory, startup=startup, shutdown=shutdown)
