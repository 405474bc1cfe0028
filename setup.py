"""Build the optional C fast path of the request parser; the metadata is in pyproject.toml.

``optional=True``: without a compiler the package still installs and the parser
runs in pure Python (server/protocol/parser.py).
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "server.protocol._chead",
            ["server/protocol/_chead.c", "server/protocol/_eager.c", "server/protocol/_answer.c",
             "server/protocol/_exchange.c", "server/protocol/_dispatch.c", "server/protocol/_send.c",
             "server/protocol/_accepted.c", "server/protocol/_receive.c"],
            depends=["server/protocol/_eager.h", "server/protocol/_answer.h", "server/protocol/_paths.h"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O2"],
            optional=True,
        )
    ]
)
