"""A native app for ``web.run_app`` (``test_web_run_app.py``): its hooks print what
ran, so the test can read the order from the process's output."""

import asyncio

from server import web


async def hello(request):
    return web.Response(text="Hello from run_app")


async def slow(request):
    print("slow started", flush=True)
    await asyncio.sleep(float(request.query.get("seconds", "1")))
    return web.Response(text="slow done")


def hook(name: str):
    async def report(app):
        print(name, flush=True)
    return report


def build() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/slow", slow)
    app.on_startup.append(hook("startup"))
    app.on_shutdown.append(hook("shutdown"))
    app.on_cleanup.append(hook("cleanup"))
    return app


app = build()


async def make_app() -> web.Application:
    await asyncio.sleep(0)
    return build()


def failing_app() -> web.Application:
    """An app whose startup fails."""
    async def no_database(app):
        raise RuntimeError("no database")
    app = build()
    app.on_startup.append(no_database)
    return app
