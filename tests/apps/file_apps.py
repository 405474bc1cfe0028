"""Files as response bodies, for tests/integration/test_file_bodies.py.

* ``asgi_app``: ``GET /file?path=P`` sends the file at ``P`` with ``http.response.pathsend``.
* ``wsgi_app``: ``GET /file?path=P&sized=0|1`` returns it through ``wsgi.file_wrapper``, with
  a Content-Length when ``sized=1`` (else the server frames it: chunked).
"""

import os
import urllib.parse


def _query(scope_query: str) -> dict:
    return dict(urllib.parse.parse_qsl(scope_query))


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = _query(scope["query_string"].decode())["path"]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % os.path.getsize(path))]})
    await send({"type": "http.response.pathsend", "path": path})


def wsgi_app(environ, start_response):
    query = _query(environ.get("QUERY_STRING", ""))
    path = query["path"]
    headers = [("Content-Type", "application/octet-stream")]
    if query.get("sized", "1") == "1":
        headers.append(("Content-Length", str(os.path.getsize(path))))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](open(path, "rb"), 64 * 1024)
