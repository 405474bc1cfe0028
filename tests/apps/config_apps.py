"""Apps for the tests of the worker's configuration (gunicorn's ASGI settings, errors at boot).

* ``marker_lifespan``: an ASGI app whose lifespan startup writes the file named by
  ``$MARKER_FILE``; its HTTP side answers the module of the running event loop;
* ``no_arguments`` and ``one_argument``: callables that fit no app kind.
"""

import asyncio
import os
from pathlib import Path


async def marker_lifespan(scope, receive, send):
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            Path(os.environ["MARKER_FILE"]).write_text("started")
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = type(asyncio.get_running_loop()).__module__.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def no_arguments():
    return [b"never served"]


def one_argument(environ):
    return [b"never served"]
