"""The PEP 3333 environ of a request.

Header fields become ``HTTP_*`` keys with ``-`` turned into ``_``; a field whose
name already holds ``_`` is dropped (as gunicorn's default ``header_map=drop``)
so that ``Transfer_Encoding`` can never pass for ``Transfer-Encoding``.
Repeated fields are joined with ", " (Cookie with "; ", RFC 6265 s5.4).
PATH_INFO is the percent-decoded path read as latin-1; RAW_URI keeps the target.

An environ is built in four layers: ``base_environ`` (the worker's, once),
``server_environ`` (the scheme and server name: once per worker for each Host,
scheme and listening address, the same for most of its connections),
``client_environ`` (a client's address: once per connection while it and the
layer under it stay the same) and ``build_environ`` (the request's own).
"""

import sys
from urllib.parse import unquote_to_bytes

from server import __version__
from server.protocol.caches import remember
from server.protocol.compiled import compiled

SERVER_SOFTWARE = f"asyncworker/{__version__}"

# Header name -> environ key ("" for Content-Length: the app reads the length set
# from the framing). Names holding "_" are not kept: they depend on forwarder fields.
_keys: dict[str, str] = {}
KEY_CACHE_SIZE = 512


def base_environ(*, multithread: bool, multiprocess: bool, file_wrapper, script_name: str = "",
                 errors=sys.stderr) -> dict:
    """The keys that are the same for every request of a worker; ``errors`` is ``wsgi.errors``
    (the worker hands the app its error log)."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.errors": errors,
        "wsgi.file_wrapper": file_wrapper,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "SCRIPT_NAME": script_name,
    }


def server_environ(base: dict, sockname, url_scheme: str, host: str | None) -> dict:
    """``base`` with the keys that depend on the scheme, the Host and the listening address only."""
    environ = base.copy()
    environ["wsgi.url_scheme"] = url_scheme
    _set_server_name(environ, host, sockname, url_scheme)
    return environ


def client_environ(server: dict, peername) -> dict:
    """``server`` (a ``server_environ``) with the client's address."""
    environ = server.copy()
    if isinstance(peername, tuple):
        environ["REMOTE_ADDR"] = str(peername[0])
        environ["REMOTE_PORT"] = str(peername[1])
    else:  # a unix socket has no peer address
        environ["REMOTE_ADDR"] = ""
        environ["REMOTE_PORT"] = ""
    return environ


def build_environ_py(client: dict, head, wsgi_input, content_length: int | None, forwarder_fields: frozenset,
                     host: str | None) -> dict:
    """The environ of the request ``head``: ``client`` (``client_environ`` of the client, scheme
    and Host the protocol resolved, behind a trusted proxy what it forwarded) with the
    request's own keys. ``forwarder_fields`` are the header names with "_" a trusted proxy may
    pass (a ``SCRIPT_NAME`` among them sets SCRIPT_NAME, as in gunicorn); ``host``, a host it
    forwarded, is HTTP_HOST in place of the request's Host. The reference for the compiled
    ``build_environ``, which hands it the requests it does not build itself."""
    environ = client.copy()
    headers = head.headers
    path = head.path
    if "%" in path:
        path = unquote_to_bytes(path).decode("latin-1")
    if "SCRIPT_NAME" in forwarder_fields:
        environ["SCRIPT_NAME"] = headers["SCRIPT_NAME"].rstrip("/")
    script_name = environ["SCRIPT_NAME"]
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        path = path[len(script_name):]
    environ["REQUEST_METHOD"] = head.method
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = head.query
    environ["RAW_URI"] = head.target
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if head.version == (1, 1) else "HTTP/%d.%d" % head.version
    environ["wsgi.input"] = wsgi_input
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    environ_fields(environ, headers, _keys, _environ_key, forwarder_fields)
    if host is not None:
        environ["HTTP_HOST"] = host
    return environ


def environ_fields_py(environ: dict, headers, keys: dict, key_of, forwarder_fields: frozenset) -> None:
    """Add the fields of ``headers`` to ``environ`` under their keys (``keys``: a field
    name's key, ``key_of(name, forwarder_fields)`` for a name not in it; "": not passed
    on). A repeated field is joined with ", " (cookies with "; "); of a repeated
    Content-Type, the last. The reference for the compiled ``environ_fields``."""
    for name, value in headers.items():
        key = keys.get(name)
        if key is None:
            key = key_of(name, forwarder_fields)
        if not key:
            continue
        if key in environ:
            if key == "CONTENT_TYPE":
                environ[key] = value
                continue
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        environ[key] = value


environ_fields = compiled("environ_fields") or environ_fields_py


def _environ_key(name: str, forwarder_fields: frozenset) -> str:
    """The environ key of a header field; "" if it is not passed on."""
    key = name.upper()
    if "_" in key:
        return "HTTP_" + key.replace("-", "_") if key in forwarder_fields else ""
    if key == "CONTENT-TYPE":
        environ_key = "CONTENT_TYPE"
    elif key == "CONTENT-LENGTH":
        environ_key = ""  # the length the app will read is set from the framing
    else:
        environ_key = "HTTP_" + key.replace("-", "_")
    return remember(_keys, name, environ_key, KEY_CACHE_SIZE)


build_environ = compiled("build_environ")
if build_environ is None:
    build_environ = build_environ_py
else:
    compiled("set_environ_parts")(_keys, _environ_key, build_environ_py)


def _set_server_name(environ: dict, host: str | None, sockname, url_scheme: str) -> None:
    default_port = "443" if url_scheme == "https" else "80"
    if host:
        if host.startswith("["):  # IPv6 literal
            name, _, port = host[1:].partition("]")
            port = port[1:] if port.startswith(":") else ""
            name = f"[{name}]"
        else:
            name, _, port = host.partition(":")
        environ["SERVER_NAME"] = name
        environ["SERVER_PORT"] = port or default_port
    elif isinstance(sockname, tuple):
        environ["SERVER_NAME"] = str(sockname[0])
        environ["SERVER_PORT"] = str(sockname[1])
    else:
        environ["SERVER_NAME"] = str(sockname or "localhost")
        environ["SERVER_PORT"] = default_port
