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

from server.protocol.compiled import compiled

from .fields import lower_fields

# 2.4: send() on a closed connection raises an OSError (ClientDisconnected);
# 2.5: websocket.disconnect has the close reason.
ASGI_SPEC_VERSION = "2.5"
_HTTP_VERSIONS = {(1, 1): "1.1", (1, 0): "1.0", (2, 0): "2"}  # (the ASGI spec names HTTP/2 "2")


def http_scope_py(head, peer: tuple, server, asgi_version: str, root_path: str, state: dict) -> dict:
    """The ``http`` scope of ``head``; ``peer`` is the scope's ``(client, scheme)``
    (see ``ASGIServerHttpProtocol.scope_peer``), ``server`` its server address.
    One dict literal, and positional arguments: this runs for every request. The reference
    of ``_chead.http_scope``, which makes the common request's (and hands any other here)."""
    path = head.path
    if root_path or "%" in path:
        path, raw_path = _paths(path, root_path)
    else:
        raw_path = path.encode("latin-1")
    version = head.version
    return {
        "asgi": {"version": asgi_version, "spec_version": ASGI_SPEC_VERSION},
        "http_version": _HTTP_VERSIONS.get(version) or "%d.%d" % version,
        "path": path,
        "raw_path": raw_path,
        "query_string": head.query.encode("latin-1"),
        "root_path": root_path,
        "headers": lower_fields(head.raw_headers),
        "client": peer[0],
        "server": server,
        "state": state.copy(),
        "type": "http",
        "method": head.method,
        "scheme": peer[1],
        "extensions": {"http.response.trailers": {}, "http.response.pathsend": {},
                       "http.response.zerocopysend": {}},
    }


http_scope = compiled("http_scope")
if http_scope is not None:
    compiled("set_scope_parts")(ASGI_SPEC_VERSION, http_scope_py)
else:
    http_scope = http_scope_py


def websocket_scope(head, peer: tuple, server, *, asgi_version: str, root_path: str, state: dict,
                    subprotocols: list[str]) -> dict:
    """The ``websocket`` scope: the ``http`` one's connection keys, with its own type,
    scheme, subprotocols and extensions (and no method)."""
    scope = http_scope(head, peer, server, asgi_version, root_path, state)
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if peer[1] == "https" else "ws"
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


def _paths(target_path: str, root_path: str) -> tuple[str, bytes]:
    """``(path, raw_path)`` of the scope: decoded, and both under ``root_path``."""
    path = unquote(target_path) if "%" in target_path else target_path
    raw_path = target_path.encode("latin-1")
    if root_path and not (path == root_path or path.startswith(root_path + "/")):
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    return path, raw_path


def scope_client(client):
    """The scope's ``client``: ``(host, port)`` (an IPv6 peername has four items), or None."""
    return tuple(client[:2]) if client else None


def server_address(sockname):
    if isinstance(sockname, tuple):
        return (str(sockname[0]), sockname[1])
    if isinstance(sockname, (str, bytes)) and sockname:
        return (sockname.decode() if isinstance(sockname, bytes) else sockname, None)
    return None
