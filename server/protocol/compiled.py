"""The compiled helpers of ``_chead.c``, where they are in use.

``compiled(name)`` is the function of that name from the extension, or None
when the extension is not built (no compiler at install: it is optional) or
``ASYNCWORKER_PURE_PYTHON=1`` asks for the pure-Python code. Each compiled
helper has a Python reference it must match exactly, and the tests compare the
two.
"""

import os

PURE_PYTHON_VARIABLE = "ASYNCWORKER_PURE_PYTHON"
# Read once, as the modules that bind the helpers are imported: in gunicorn's master, when it
# imports the worker class, which is before it applies --env and raw_env (see workers/config.py).
pure_python_asked = os.environ.get(PURE_PYTHON_VARIABLE) == "1"

_chead = None
if not pure_python_asked:
    try:
        from . import _chead
    except ImportError:  # not built: every caller has the Python version
        pass


def compiled(name: str):
    return getattr(_chead, name, None)


def in_use() -> bool:
    """Whether the compiled helpers are in use (built, and not turned off)."""
    return _chead is not None
