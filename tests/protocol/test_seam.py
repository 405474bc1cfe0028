"""The seam between a connection and the app kinds, driven by a connection that is not HTTP/1.1.

``EventChannel`` implements the channel side of ``server.protocol.seam`` with no
bytes on any wire: it records what each app kind asks it to send as events
(start, body, end, error, abort). WSGI, ASGI and native apps are served through
it by their own connection-side objects, unchanged: this is what a second
protocol (HTTP/2 streams) plugs into. Request heads come from the sans-IO parser;
nothing here starts a server or opens a socket.
"""

import asyncio
import os
from dataclasses import dataclass

import pytest

from server import web
from server.asgi.protocol import ASGIConfig, ASGIConnection
from server.protocol.events import Data, EndOfMessage, RequestHead
from server.protocol.heads import STATUS_LINE, standard_reason
from server.protocol.parser import RequestParser
from server.protocol.server import ServerConfig
from server.protocol.writer import parse_status
from server.web.protocol import WebConnection, WebContext
from server.wsgi.environ import base_environ
from server.wsgi.filewrapper import FileWrapper
from server.wsgi.pool import ThreadPool
from server.wsgi.protocol import WSGIConfig, WSGIConnection

HELLO = b"hello world"


class QuietLog:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@dataclass
class EventHead:
    """The channel's head of a response: what the kinds read of one (no bytes)."""

    status: int
    reason: str
    headers: list
    length: int | None
    keep_alive: bool = True
    sized: bool = False
    no_body: bool = False


@dataclass
class Framing:
    length: int | None
    sent: int = 0
    truncated: bool = False

    @property
    def complete(self) -> bool:
        return self.length is None or self.sent == self.length


@dataclass
class Peer:
    client: tuple = ("192.0.2.7", 5000)
    scheme: str = "https"
    host: str | None = None
    fields: frozenset = frozenset()
    error: str | None = None


class EventChannel:
    """A connection of another protocol: the app kinds' sends become events."""

    def __init__(self, loop, kind):
        self.loop = loop
        self.config = ServerConfig(log=QuietLog())
        self.log = self.config.log
        self.sockname = ("192.0.2.1", 443)
        self.transport = self  # (is_closing: the kinds ask whether the client is still there)
        self.keep_alive_allowed = True
        self.writing_paused = False
        self.exchange = self.log_environ = self.framing = None
        self.request_forwarded = None  # (the kinds then ask forwarded(head))
        self.events = []
        self.finished = asyncio.Event()
        self.app = kind(self)

    def is_closing(self) -> bool:
        return False

    # the request side
    def forwarded(self, head):
        return Peer()

    def start_task(self, coro):
        return self.loop.create_task(coro)

    def send_continue(self):
        pass  # (a 100 Continue is a wire matter)

    def lease_socket(self):
        return None  # (no socket for an app thread to write to)

    def pause_reading(self, reason):
        pass

    def resume_reading(self, reason):
        pass

    async def drain(self):
        pass

    # the response side
    def response_head(self, request, status, reason, fields, body_size=None, close=False, normalise=None):
        headers = list(fields) if normalise is None else normalise(fields)
        if reason is STATUS_LINE:
            status, reason = parse_status(status)
        declared = next((int(v) for n, v in headers if n.lower() == "content-length"), None)
        length = declared if declared is not None else body_size
        head = EventHead(status, reason or standard_reason(status), headers, length,
                         sized=declared is None and body_size is not None, no_body=request.method == "HEAD")
        return head, None

    def send_response(self, head, data, body=b"", end=False, size=0):
        self.events.append(("start", head.status, [(n.lower(), v) for n, v in head.headers]))
        self.framing = Framing(head.length)
        return self.send_body(body, end)

    def send_body(self, data, end=False):
        if data:
            self.events.append(("body", bytes(data)))
            self.framing.sent += len(data)
        if end:
            self.end_response()
        return False

    def send_pieces(self, pieces, size, end=False):
        return self.send_body(b"".join(pieces), end)

    def end_response(self, data=b"", trailers=None):
        if data:
            self.send_body(data)
        self.events.append(("end",))
        self.finished.set()

    async def send_file(self, file, offset, count, end=False):
        self.send_body(os.pread(file.fileno(), count, offset))
        if end:
            self.end_response()
        return count

    def abort_response(self):
        self.events.append(("abort",))
        self.finished.set()

    def handle_error(self, status, message="", exc=None, headers=None, close=True):
        self.events.append(("error", status))
        self.finished.set()

    # what the connection does with a request
    async def serve(self, raw: bytes):
        """Hand the app kind the request in ``raw``, its body through the sink, and wait."""
        events = RequestParser().feed(raw)
        sink = None
        for event in events:
            if isinstance(event, RequestHead):
                sink = self.app.on_request(event)
            elif isinstance(event, Data) and sink is not None:
                sink.feed_data(event.data, event.end_of_chunk)
            elif isinstance(event, EndOfMessage) and sink is not None:
                sink.feed_eof(event.trailers)
        await asyncio.wait_for(self.finished.wait(), 5)
        return self.events


# -- one app of each kind ------------------------------------------------------------------

def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("failing on purpose")
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"got ", body])
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(environ["test.file"], "rb"))
    if path == "/peer":
        start_response("200 OK", [])
        return [f"{environ['REMOTE_ADDR']} {environ['wsgi.url_scheme']}".encode()]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [HELLO]


async def asgi_app(scope, receive, send):
    path = scope["path"]
    if path == "/fail":
        raise RuntimeError("failing on purpose")
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send(start)
        await send({"type": "http.response.body", "body": b"got ", "more_body": True})
        await send({"type": "http.response.body", "body": body})
    elif path == "/file":
        await send(start)
        await send({"type": "http.response.pathsend", "path": FILE_PATH[0]})
    elif path == "/peer":
        await send({**start, "headers": []})
        await send({"type": "http.response.body", "body": f"{scope['client'][0]} {scope['scheme']}".encode()})
    else:
        await send(start)
        await send({"type": "http.response.body", "body": HELLO})


async def native_hello(request):
    return web.Response(body=HELLO, content_type="text/plain")


async def native_fail(request):
    raise RuntimeError("failing on purpose")


async def native_echo(request):
    body = await request.read()
    response = web.StreamResponse()
    response.content_type = "text/plain"
    await response.prepare(request)
    await response.write(b"got ")
    await response.write(body)
    return response


async def native_file(request):
    return web.FileResponse(FILE_PATH[0], headers={"Content-Type": "text/plain"})


async def native_peer(request):
    return web.Response(body=f"{request.remote} {request.scheme}".encode())


FILE_PATH = [""]


def native_app():
    app = web.Application()
    for path, handler in (("/hello", native_hello), ("/fail", native_fail), ("/file", native_file),
                          ("/peer", native_peer)):
        app.router.add_get(path, handler)
    app.router.add_post("/echo", native_echo)
    return app


def kind_factory(kind: str, loop, tmp_path):
    """``channel -> AppConnection`` of ``kind``, as the worker builds it."""
    if kind == "wsgi":
        environ = base_environ(multithread=False, multiprocess=False, file_wrapper=FileWrapper)
        environ["test.file"] = FILE_PATH[0]
        wsgi = WSGIConfig(app=wsgi_app, pool=ThreadPool(loop, 1), environ=environ, log=QuietLog(),
                          tmp_dir=str(tmp_path))
        return lambda channel: WSGIConnection(wsgi, channel)
    if kind == "asgi":
        asgi = ASGIConfig(app=asgi_app, log=QuietLog())
        return lambda channel: ASGIConnection(asgi, channel)
    context = WebContext(app=native_app(), log=QuietLog())
    return lambda channel: WebConnection(context, channel)


def serve(kind: str, raw: bytes, tmp_path) -> list:
    FILE_PATH[0] = str(tmp_path / "file.txt")
    (tmp_path / "file.txt").write_bytes(b"0123456789" * 1000)

    async def main():
        loop = asyncio.get_running_loop()
        channel = EventChannel(loop, kind_factory(kind, loop, tmp_path))
        return await channel.serve(raw)

    return asyncio.run(main())


def body_of(events) -> bytes:
    return b"".join(e[1] for e in events if e[0] == "body")


KINDS = ["wsgi", "asgi", "native"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_whole_response_is_one_start_its_body_and_an_end(kind, tmp_path):
    events = serve(kind, b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", tmp_path)
    assert events[0][:2] == ("start", 200) and ("content-type", "text/plain") in events[0][2]
    assert body_of(events) == HELLO and events[-1] == ("end",)


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_app_is_answered_with_the_channels_error_response(kind, tmp_path):
    assert serve(kind, b"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n", tmp_path) == [("error", 500)]


@pytest.mark.parametrize("kind", KINDS)
def test_the_request_body_comes_through_the_sink(kind, tmp_path):
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    events = serve(kind, raw, tmp_path)
    assert events[0][:2] == ("start", 200)
    assert body_of(events) == b"got abcde" and events[-1] == ("end",)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_goes_through_the_channels_file_sender(kind, tmp_path):
    events = serve(kind, b"GET /file HTTP/1.1\r\nHost: t\r\n\r\n", tmp_path)
    assert events[0][:2] == ("start", 200)
    assert body_of(events) == b"0123456789" * 1000 and events[-1] == ("end",)


@pytest.mark.parametrize("kind", KINDS)
def test_the_client_is_the_one_the_channel_names(kind, tmp_path):
    events = serve(kind, b"GET /peer HTTP/1.1\r\nHost: t\r\n\r\n", tmp_path)
    assert body_of(events) == b"192.0.2.7 https"
