"""The ASGI connection scope of a request head (``http`` and ``websocket``).

    RequestHead + the connection (client, scheme, server) + root path + lifespan state
        ──► scope dict

``path`` is percent-decoded and read as UTF-8; it is the full path as the client
asked for it, with ``root_path`` (the WSGI bridge's SCRIPT_NAME) as its prefix: a
path that does not start with the root path (a proxy removed the prefix) gets
it prepended, as a WSGI app would see SCRIPT_NAME + PATH_INFO. Header names are
lower-cased byte strings, in the order received, duplicates kept.
"""

from urllib.parse import unquote

# 2.4: send() on a closed connection raises an OSError (ClientDisconnected);
# 2.5: websocket.disconnect has the close reason.
ASGI_SPEC_VERSION = "2.5"
HTTP_EXTENSIONS = ("http.response.trailers", "http.response.pathsend", "http.response.zerocopysend")  # as in http_scope


_HTTP_VERSIONS = {(1, 1): "1.1", (1, 0): "1.0"}


def http_scope(protocol, head, *, asgi_version: str, root_path: str, state: dict,
               client=None, scheme: str | None = None, server=None) -> dict:
    """The ``http`` scope of ``head``.

    ``client``, ``scheme`` and ``server`` may be given when the caller already
    knows them (they are constant for a connection without a proxy policy).
    """
    path = head.path
    raw_path = path.encode("latin-1")
    if "%" in path:
        path = unquote(path)
    if root_path and not (path == root_path or path.startswith(root_path + "/")):
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    if scheme is None:
        client = protocol.client_address(head)
        if client is not None:
            client = tuple(client[:2])
        scheme = protocol.url_scheme(head)
    version = head.version
    return {
        "asgi": {"version": asgi_version, "spec_version": ASGI_SPEC_VERSION},
        "http_version": _HTTP_VERSIONS.get(version) or "%d.%d" % version,
        "path": path,
        "raw_path": raw_path,
        "query_string": head.query.encode("latin-1"),
        "root_path": root_path,
        "headers": [(name.lower(), value) for name, value in head.raw_headers],
        "client": client,
        "server": server if server is not None else server_address(protocol.sockname),
        "state": state.copy(),
        "type": "http",
        "method": head.method,
        "scheme": scheme,
        "extensions": {"http.response.trailers": {}, "http.response.pathsend": {},
                       "http.response.zerocopysend": {}},
    }


def websocket_scope(protocol, head, *, asgi_version: str, root_path: str, state: dict,
                    subprotocols: list[str]) -> dict:
    scope = _common_scope(protocol, head, asgi_version, root_path, state)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if protocol.url_scheme(head) == "https" else "ws"
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


def _common_scope(protocol, head, asgi_version: str, root_path: str, state: dict) -> dict:
    path = unquote(head.path) if "%" in head.path else head.path
    raw_path = head.path.encode("latin-1")
    if root_path and not (path == root_path or path.startswith(root_path + "/")):
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    client = protocol.client_address(head)
    return {
        "asgi": {"version": asgi_version, "spec_version": ASGI_SPEC_VERSION},
        "http_version": "%d.%d" % head.version,
        "path": path,
        "raw_path": raw_path,
        "query_string": head.query.encode("latin-1"),
        "root_path": root_path,
        "headers": [(name.lower(), value) for name, value in head.raw_headers],
        "client": tuple(client[:2]) if client else None,
        "server": server_address(protocol.sockname),
        "state": state.copy(),
    }


def server_address(sockname):
    if isinstance(sockname, tuple):
        return (str(sockname[0]), sockname[1])
    if isinstance(sockname, (str, bytes)) and sockname:
        return (sockname.decode() if isinstance(sockname, bytes) else sockname, None)
    return None
