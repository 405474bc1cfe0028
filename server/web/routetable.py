"""RouteTableDef: routes declared with decorators, apart from any app, as in aiohttp.

    routes = web.RouteTableDef()

    @routes.get("/users/{id}")
    async def user(request): ...

    routes.static("/assets", "static/")
    app.router.add_routes(routes)     # or app.add_routes(routes)

The table is a sequence of route definitions (``RouteDef``, ``StaticDef``): it
can be iterated, indexed and mixed with ``web.get(...)``-style definitions. The
decorators return the handler unchanged, so one handler can be put on several
routes.
"""

from collections.abc import Sequence

from .router import METH_ANY, RouteDef
from .static import StaticDef


class RouteTableDef(Sequence):
    def __init__(self):
        self._items: list = []

    def __repr__(self) -> str:
        return f"<RouteTableDef count={len(self._items)}>"

    def __getitem__(self, index):
        return self._items[index]

    def __len__(self) -> int:  # (Sequence makes iteration and ``in`` of these two)
        return len(self._items)

    def route(self, method: str, path: str, **kwargs):
        """A decorator adding ``handler`` for ``method`` on ``path``; the others are this one."""
        def register(handler):
            self._items.append(RouteDef(method, path, handler, kwargs))
            return handler
        return register

    def head(self, path: str, **kwargs):
        return self.route("HEAD", path, **kwargs)

    def get(self, path: str, *, allow_head: bool = True, **kwargs):
        return self.route("GET", path, allow_head=allow_head, **kwargs)

    def post(self, path: str, **kwargs):
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.route("DELETE", path, **kwargs)

    def options(self, path: str, **kwargs):
        return self.route("OPTIONS", path, **kwargs)

    def view(self, path: str, **kwargs):
        """Every method of ``path`` to one handler (the router's ``add_view``)."""
        return self.route(METH_ANY, path, **kwargs)

    def static(self, prefix: str, path, **kwargs) -> None:
        """Files under the directory ``path`` at ``prefix`` (the router's ``add_static``)."""
        self._items.append(StaticDef(prefix, path, kwargs))
