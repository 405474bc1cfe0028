"""Which protocol serves the loaded app.

The worker loads the app the gunicorn way (``self.wsgi``) and asks here for a
protocol factory. Each kind of app is served by its own protocol subclass behind
the same ``ServerHttpProtocol`` core; today every app is a WSGI app (native
``web.Application`` and ASGI apps plug in here as further kinds).
"""

import asyncio
import os

from server.wsgi.environ import base_environ
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import RequestHooks, WSGIConfig, WSGIServerHttpProtocol
from server.protocol.accesslog import access_log_enabled


def protocol_factory_for(worker, app):
    """Return ``(protocol_factory, cleanup)`` for ``app``."""
    return _wsgi_factory(worker, app)


def _wsgi_factory(worker, app):
    cfg = worker.cfg
    settings = worker.settings
    server_config = worker.server_config()
    pool = ThreadPool(worker.loop, cfg.threads, log=worker.log)
    wsgi = WSGIConfig(
        app=app,
        pool=pool,
        environ=base_environ(
            multithread=cfg.threads > 1,
            multiprocess=cfg.workers > 1,
            file_wrapper=FileWrapper,
            script_name=_script_name(cfg),
        ),
        log=worker.log,
        readpayload=settings.readpayload,
        spool_threshold=settings.spool_threshold,
        tmp_dir=cfg.tmp_upload_dir,
        url_scheme="https" if cfg.is_ssl else "http",
        server_header=server_config.server_header,
        debug=settings.debug,
        access_log=access_log_enabled(worker.log),
        sendfile=cfg.sendfile is not False and _loop_has_sendfile(worker.loop),
        worker=worker,
        hooks=RequestHooks.from_gunicorn(cfg),
    )

    def factory():
        return WSGIServerHttpProtocol(wsgi, server_config, loop=worker.loop, owner=worker)

    return factory, pool.shutdown


def _script_name(cfg) -> str:
    root = getattr(cfg, "root_path", "") or os.environ.get("SCRIPT_NAME", "")
    return root.rstrip("/")


def _loop_has_sendfile(loop) -> bool:
    return type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile
