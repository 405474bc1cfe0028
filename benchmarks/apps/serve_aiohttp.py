"""Serve an aiohttp ``web.Application`` for the benchmark suite (aiohttp's own server, no access log).

    python benchmarks/apps/serve_aiohttp.py --port 8080 [--backlog 2048] aiohttp_hello:app

The object named may be an ``Application`` or a function (plain or async,
without arguments) that returns one. The loop is uvloop when installed, as for
the other servers.
"""

import argparse
import importlib

from aiohttp import web


def load(spec: str):
    module, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module), attr or "app")
    return obj if isinstance(obj, web.Application) else obj()  # run_app also takes an awaitable


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backlog", type=int, default=2048)
    p.add_argument("app", help="module:attribute")
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    web.run_app(load(args.app), host="127.0.0.1", port=args.port, backlog=args.backlog,
                access_log=None, print=None, loop=uvloop.new_event_loop() if uvloop else None)


if __name__ == "__main__":
    main()
