"""A native app exercising routing, middlewares, hooks, errors and responses,
for tests/test_web_app.py. ``WEB_MARKS`` names a file where the per-worker
hooks append what ran; ``WEB_FILE`` a file that /file serves.
"""

import asyncio
import contextvars
import os

from server import web


def mark(text: str) -> None:
    path = os.environ.get("WEB_MARKS")
    if path:
        with open(path, "a") as f:
            f.write(f"{text} {os.getpid()}\n")


@web.middleware
async def outer(request, handler):
    request["trace"] = ["outer"]
    response = await handler(request)
    if isinstance(response, web.StreamResponse) and not response.prepared:
        response.headers["X-Outer"] = "1"
    return response


async def inner(request, handler):
    request["trace"].append("inner")
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith("/styled/"):
            return web.Response(status=404, text="styled not found")
        raise


async def echo(request):
    return web.json_response({
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": list(request.query.items()),
        "version": list(request.version),
        "keep_alive": request.keep_alive,
        "remote": request.remote,
        "scheme": request.scheme,
        "host": request.host,
        "content_type": request.content_type,
        "charset": request.charset,
        "content_length": request.content_length,
        "can_read_body": request.can_read_body,
        "cookies": dict(request.cookies),
        "match_info": dict(request.match_info),
        "x_test": request.headers.getall("X-Test", []),
        "trace": request["trace"],
    })


async def hello(request):
    return web.Response(text="Hello, world!")


async def read_body(request):
    kind = request.match_info["kind"]
    if kind == "read":
        return web.json_response({"size": len(await request.read())})
    if kind == "text":
        return web.json_response({"text": await request.text()})
    if kind == "json":
        return web.json_response({"json": await request.json()})
    if kind == "post":
        form = await request.post()
        return web.json_response({"form": [[k, v if isinstance(v, str) else v.filename]
                                           for k, v in form.items()]})
    if kind == "raw":  # past the protocol's body cap, the stream raises
        return web.json_response({"size": len(await request.content.read())})
    raise web.HTTPNotFound()


async def fail(request):
    raise ValueError("boom in handler")


async def returns_none(request):
    await asyncio.sleep(0)


async def bad_header(request):
    value = request.query.get("value", "a\r\nX-Injected: yes")
    if request.query.get("stream"):
        response = web.StreamResponse(headers={"X-Bad": value})
        await response.prepare(request)
        await response.write(b"never")
        return response
    return web.Response(text="never", headers={"X-Bad": value})


async def fail_after_prepare(request):
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"partial")
    raise RuntimeError("boom after prepare")


async def raise_http(request):
    what = request.match_info["what"]
    if what == "redirect":
        raise web.HTTPFound("/hello")
    if what == "nocontent":
        return web.HTTPNoContent()
    if what == "forbidden":
        raise web.HTTPForbidden(text="go away")
    raise web.HTTPBadRequest()


async def status(request):
    response = web.Response(text="teapot")
    response.set_status(418, "I'm a teapot")
    return response


async def cookies(request):
    response = web.Response(text="cookies")
    response.set_cookie("session", "abc123", httponly=True, max_age=60, samesite="Lax")
    response.del_cookie("old")
    return response


async def compressed(request):
    response = web.Response(text="compress me " * 200)
    force = request.query.get("force")
    response.enable_compression(force=force)
    return response


async def last_modified(request):
    response = web.Response(text="dated")
    response.last_modified = 1_700_000_000
    return response


async def serve_file(request):
    return web.FileResponse(os.environ["WEB_FILE"])


async def missing_file(request):
    return web.FileResponse("/nonexistent/file.txt")


async def items(request):
    return web.Response(text=f"{request.method} items")


request_mark = contextvars.ContextVar("request_mark", default=None)


async def task_context(request):
    """What a handler may rely on: its own task, asyncio.timeout() and context variables
    that start fresh for every request (its first step runs before any task step)."""
    before = request_mark.get()
    request_mark.set(request.query.get("mark"))
    task = asyncio.current_task()
    async with asyncio.timeout(5):
        await asyncio.sleep(0.01)
    return web.json_response({"before": before, "after": request_mark.get(),
                              "same_task": asyncio.current_task() is task is not None})


async def on_startup(app):
    app["started"] = True
    mark("startup")


async def on_shutdown(app):
    mark("shutdown")


async def on_cleanup(app):
    mark("cleanup")


async def context(app):
    mark("ctx-enter")
    yield
    mark("ctx-exit")


def build(debug: bool = False) -> web.Application:
    app = web.Application(middlewares=[outer, inner], debug=debug)
    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    app.cleanup_ctx.append(context)
    router = app.router
    router.add_get("/hello", hello)
    router.add_route("*", "/echo", echo)
    router.add_get("/users/{id}", echo)
    router.add_get(r"/re/{num:\d+}/{rest:.+}", echo)
    router.add_get("/styled/known", hello)
    router.add_route("PURGE", "/cache", items)
    router.add_get("/items", items, allow_head=False)
    router.add_get("/task-context", task_context)
    router.add_post("/items", items)
    router.add_put("/items", items)
    router.add_patch("/items", items)
    router.add_delete("/items", items)
    router.add_head("/items", items)
    router.add_post("/body/{kind}", read_body)
    router.add_get("/fail", fail)
    router.add_get("/none", returns_none)
    router.add_get("/badheader", bad_header)
    router.add_get("/fail-after-prepare", fail_after_prepare)
    router.add_get("/http/{what}", raise_http)
    router.add_get("/status", status)
    router.add_get("/cookies", cookies)
    router.add_get("/compressed", compressed)
    router.add_get("/last-modified", last_modified)
    router.add_get("/file", serve_file)
    router.add_get("/missing-file", missing_file)
    app.add_routes([web.get("/routedef", hello)])
    return app


app = build()


async def make_app() -> web.Application:
    """An async factory (detected by its annotation)."""
    await asyncio.sleep(0)
    return build()


@web.app_factory
def make_app_sync():
    return build()


def make_debug_app() -> web.Application:
    return build(debug=True)
