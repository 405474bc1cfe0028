"""The compiled helpers of ``_chead.c``, where they are in use.

``compiled(name)`` is the function of that name from the extension, or None
when the extension is not built (no compiler at install: it is optional) or
``ASYNCWORKER_PURE_PYTHON=1`` asks for the pure-Python code. Each compiled
helper has a Python reference it must match exactly, and the tests compare the
two.
"""

import os

_chead = None
if os.environ.get("ASYNCWORKER_PURE_PYTHON") != "1":
    try:
        from . import _chead
    except ImportError:  # not built: every caller has the Python version
        pass


def compiled(name: str):
    return getattr(_chead, name, None)
