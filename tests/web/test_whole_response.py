"""A plain ``Response`` goes out whole by a short path (``Response.send_whole``); any
``on_response_prepare`` callback sends it the general way (``prepare`` + ``write_eof``).
Both must put the same bytes on the wire."""

import asyncio
import re

import pytest

from server import web
from server.protocol.server import ServerConfig
from server.web.protocol import WebContext, WebServerHttpProtocol


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class MemoryTransport:
    def __init__(self):
        self.written = []

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data):
        self.written.append(data)

    def is_closing(self):
        return False

    def close(self):
        pass

    def can_write_eof(self):
        return False

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0


def make_response(case: str) -> web.Response:
    if case == "text":
        return web.Response(text="hello")
    if case == "typed":
        return web.Response(body=b"{}", content_type="application/json", headers={"X-A": "1"})
    if case == "cookie":
        response = web.Response(text="c")
        response.set_cookie("session", "abc", httponly=True)
        return response
    if case == "created":
        return web.Response(body=b"made", status=201)
    return web.Response(body=b"")


async def serve(case: str, method: str, general: bool) -> bytes:
    async def handler(request):
        return make_response(case)

    async def prepared(request, response):
        pass

    app = web.Application()
    app.router.add_route(method, "/", handler)
    if general:
        app.on_response_prepare.append(prepared)
    await app.startup()
    protocol = WebServerHttpProtocol(WebContext(app=app, log=QuietLog()), ServerConfig(log=QuietLog(), keepalive=5))
    transport = MemoryTransport()
    protocol.connection_made(transport)
    protocol.data_received(f"{method} / HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    for _ in range(100):
        if transport.written:
            break
        await asyncio.sleep(0)
    return re.sub(rb"Date: [^\r]*", b"Date: -", b"".join(transport.written))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("case", ["text", "typed", "cookie", "created", "empty"])
def test_the_short_path_puts_the_general_paths_bytes_on_the_wire(case, method):
    short, general = (asyncio.run(serve(case, method, flag)) for flag in (False, True))
    assert short.startswith(b"HTTP/1.1 2")
    assert short == general
