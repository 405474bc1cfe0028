"""aiohttp's names without a server: RouteTableDef, route definitions, add_static's
checks and name resolution, AppKey."""

import os

import pytest

from server import web


async def handler(request):
    return web.Response()


# -- RouteTableDef and route definitions ---------------------------------------------------


def test_route_table_decorators_return_the_handler_and_record_definitions():
    routes = web.RouteTableDef()
    decorated = routes.get("/a", name="a")(handler)
    routes.post("/a")(handler)
    routes.put("/a")(handler)
    routes.patch("/a")(handler)
    routes.delete("/a")(handler)
    routes.head("/h")(handler)
    routes.options("/a")(handler)
    routes.view("/v")(handler)
    routes.route("PURGE", "/a")(handler)
    assert decorated is handler
    assert len(routes) == 9
    assert [d.method for d in routes] == ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*", "PURGE"]
    assert routes[0] == web.RouteDef("GET", "/a", handler, {"name": "a", "allow_head": True})
    assert routes[0] in routes
    assert repr(routes) == "<RouteTableDef count=9>"


def test_add_routes_takes_a_table_and_returns_what_it_added(tmp_path):
    routes = web.RouteTableDef()
    routes.get("/a")(handler)
    routes.static("/s", tmp_path)
    app = web.Application()
    added = app.add_routes(routes)
    assert len(added) == 2
    assert isinstance(added[1], web.StaticResource)
    router = app.router
    assert router.resolve("GET", "/a").handler is handler
    assert router.resolve("HEAD", "/a").handler is handler  # allow_head by default, as add_get
    assert router.resolve("GET", "/s/x").route_path == "/s"


def test_add_routes_takes_a_list_of_definitions(tmp_path):
    router = web.Router()
    added = router.add_routes([web.get("/a", handler, allow_head=False), web.post("/a", handler),
                               web.options("/a", handler), web.view("/v", handler),
                               web.static("/s", tmp_path, show_index=True)])
    assert len(added) == 5
    assert added[0] is added[1]  # one resource, two methods
    assert router.resolve("HEAD", "/a").handler is not handler  # 405
    assert router.resolve("OPTIONS", "/a").handler is handler
    assert router.resolve("DELETE", "/v").handler is handler
    assert added[4].show_index


def test_a_get_definition_answers_head_unless_told_not_to():
    """aiohttp registers a definition through add_<method>: route("GET") is add_get."""
    router = web.Router()
    router.add_routes([web.route("GET", "/r", handler), web.route("get", "/lower", handler),
                       web.route("PURGE", "/p", handler), web.route("GET", "/no-head", handler, allow_head=False)])
    assert router.resolve("HEAD", "/r").handler is handler
    assert router.resolve("HEAD", "/lower").handler is not handler
    assert router.resolve("PURGE", "/p").handler is handler
    assert router.resolve("HEAD", "/no-head").handler is not handler


# -- add_static ----------------------------------------------------------------------------------


def test_add_static_checks_its_arguments(tmp_path):
    router = web.Router()
    with pytest.raises(ValueError):
        router.add_static("static", tmp_path)
    with pytest.raises(ValueError):
        router.add_static("/static", tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError):
        router.add_static("/static", tmp_path / "file")
    router.freeze()
    with pytest.raises(RuntimeError):
        router.add_static("/static", tmp_path)


def test_static_resource_matches_under_its_prefix_only(tmp_path):
    router = web.Router()
    resource = router.add_static("/static/", tmp_path)
    router.add_get("/static/shadowed", handler)  # added after: the static resource comes first
    router.add_get("/static", handler)
    assert resource.match("/static/a%2Fb%252e") == {"filename": "a/b%2e"}
    assert resource.match("/staticx/a") is None
    assert router.resolve("GET", "/static/shadowed").route_path == "/static"
    assert router.resolve("GET", "/static").handler is handler
    assert router.resolve("GET", "/static/%2e%2e/x") == {"filename": "../x"}


def test_static_resolve_refuses_every_name_outside(tmp_path):
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "f.txt").write_text("f")
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", public / "out")
    os.symlink("loop", public / "loop")
    strict = web.StaticResource("/s", public)
    following = web.StaticResource("/s", public, follow_symlinks=True)
    assert strict.resolve("f.txt") == (public / "f.txt", False)
    assert strict.resolve("") == (public, True)
    assert strict.resolve("sub/../f.txt") == (public / "f.txt", False)
    for name in ["../secret", "sub/../../secret", "..\\secret", "f.txt\x00", "out", "missing", "loop",
                 "x" * 5000]:
        with pytest.raises(web.HTTPNotFound):
            strict.resolve(name)
    with pytest.raises(web.HTTPForbidden):
        strict.resolve("/etc/passwd")
    assert following.resolve("out") == (tmp_path / "secret", False)
    with pytest.raises(web.HTTPNotFound):
        following.resolve("../secret")


# -- AppKey ---------------------------------------------------------------------------------------


FIRST = web.AppKey("db", int)  # keys are made at a module's top level: named after it
SECOND = web.AppKey("db", int)
GENERIC = web.AppKey[str]("name")
UNTYPED = web.AppKey("x")


def test_app_keys_are_typed_distinct_and_ordered():
    first, second, generic = FIRST, SECOND, GENERIC
    app = web.Application()
    app[first] = 1
    app[second] = 2
    app["db"] = 3
    assert (app[first], app[second], app["db"]) == (1, 2, 3)
    assert app.get(generic) is None
    assert repr(first) == f"<AppKey({__name__}.db, type=int)>"
    assert repr(generic) == f"<AppKey({__name__}.name, type=str)>"
    assert repr(UNTYPED) == f"<AppKey({__name__}.x, type=<<Unknown>>)>"
    assert sorted([generic, first]) == [first, generic]
    assert first < "a string key"
