"""A native app with static routes, a RouteTableDef and AppKey state, for
``test_web_static.py``. ``STATIC_DIR`` is the directory served; the test puts a
secret file beside it, and symlinks inside it, to check nothing outside is served."""

import os

from server import web

GREETING = web.AppKey("GREETING", str)
routes = web.RouteTableDef()


@routes.get("/table/{name}")
async def table_get(request):
    return web.Response(text=f"{request.app[GREETING]}, {request.match_info['name']}")


@routes.post("/table")
@routes.put("/table")
async def table_write(request):
    return web.Response(text=f"{request.method} {await request.text()}")


@routes.view("/table-view")
async def table_view(request):
    return web.Response(text=f"view {request.method}")


def build() -> web.Application:
    directory = os.environ["STATIC_DIR"]
    app = web.Application()
    app[GREETING] = "Hello"
    app.router.add_static("/static", directory)
    app.router.add_static("/indexed/", directory, show_index=True)
    app.router.add_static("/follow", directory, follow_symlinks=True)
    routes.static("/table-static", directory)
    app.add_routes(routes)
    return app


app = build()
