"""The native web layer, in the style of aiohttp's ``web`` module.

    from server import web

    async def hello(request):
        return web.Response(text="Hello, world")

    app = web.Application()
    app.router.add_get("/", hello)
    # gunicorn -k server.workers.AsyncWorker mymodule:app

AsyncWorker detects an ``Application`` (or a factory returning one, see
``detect.py``) and serves it on its event loop, with no thread hop.
"""

from .app import Application, Signal, middleware
from .detect import app_factory, is_native_app
from .exceptions import *  # noqa: F401,F403  (HTTPException and its subclasses)
from .exceptions import __all__ as _exceptions
from .fileresponse import FileResponse
from .multipart import BodyPartReader, FileField, MultipartReader
from .request import HttpVersion, Request
from .response import Response, StreamResponse, json_response
from .router import MatchInfo, RouteDef, Router, delete, get, head, options, patch, post, put, route, view
from .routetable import RouteTableDef
from .runner import run_app
from .static import StaticDef, StaticResource, static
from .state import AppKey
from .websocket import WebSocketReady, WebSocketResponse, WSCloseCode, WSMessage, WSMsgType

__all__ = [
    "Application", "Signal", "middleware", "app_factory", "is_native_app",
    "FileResponse", "BodyPartReader", "FileField", "MultipartReader",
    "HttpVersion", "Request", "Response", "StreamResponse", "json_response",
    "MatchInfo", "RouteDef", "Router", "delete", "get", "head", "options", "patch", "post", "put", "route", "view",
    "AppKey", "RouteTableDef", "run_app", "StaticDef", "StaticResource", "static",
    "WebSocketReady", "WebSocketResponse", "WSCloseCode", "WSMessage", "WSMsgType",
    *_exceptions,
]
