"""An app that sets the garbage collector's thresholds of its own as it is imported."""

import gc

from gc_apps import asgi_app, wsgi_app  # noqa: F401 - served from here

gc.set_threshold(1234, 10, 10)
