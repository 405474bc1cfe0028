"""What serving an ASGI app takes, from plain values: its ``ASGIConfig`` and its ``Lifespan``.

The worker (``server.workers.apps``) reads the values from its configuration,
builds these, runs ``lifespan.startup()`` before accepting connections and
``lifespan.shutdown()`` after. A failed startup raises ``LifespanFailure``; the
worker turns it into its own way of stopping.
"""

from .detect import as_asgi3
from .lifespan import Lifespan
from .protocol import ASGIConfig


def asgi_config(app, log, *, root_path: str, ws_max_message_size: int) -> ASGIConfig:
    """The ASGIConfig of ``app``: an ASGI 3 app as it is, an ASGI 2 one wrapped as ASGI 3."""
    app3, version = as_asgi3(app)
    return ASGIConfig(app=app3, log=log, asgi_version=version, root_path=root_path,
                      ws_max_message_size=ws_max_message_size)


def lifespan_of(asgi: ASGIConfig, mode: str) -> Lifespan:
    """The lifespan of the app ``asgi`` serves; its state is what every request scope gets a copy of.

    ``mode``: auto, on or off (see ``lifespan.py``).
    """
    return Lifespan(asgi.app, mode, asgi.log, asgi.state, asgi.asgi_version)
