"""The PEP 3333 environ of a request.

Header fields become ``HTTP_*`` keys with ``-`` turned into ``_``; a field whose
name already holds ``_`` is dropped (as gunicorn's default ``header_map=drop``)
so that ``Transfer_Encoding`` can never pass for ``Transfer-Encoding``.
Repeated fields are joined with ", " (Cookie with "; ", RFC 6265 s5.4).
PATH_INFO is the percent-decoded path read as latin-1; RAW_URI keeps the target.
"""

import sys
from urllib.parse import unquote_to_bytes

from server import __version__

SERVER_SOFTWARE = f"asyncworker/{__version__}"


def base_environ(*, multithread: bool, multiprocess: bool, file_wrapper, script_name: str = "") -> dict:
    """The keys that are the same for every request of a worker."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.errors": sys.stderr,
        "wsgi.file_wrapper": file_wrapper,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "SCRIPT_NAME": script_name,
    }


def build_environ(base: dict, head, *, wsgi_input, content_length: int | None, peername, sockname,
                  url_scheme: str, host: str | None = None, forwarder_fields: frozenset = frozenset()) -> dict:
    """``peername``, ``url_scheme`` and ``host`` are the client's as the protocol
    resolved them (behind a trusted proxy: what it forwarded); ``forwarder_fields``
    are the header names with "_" a trusted proxy may pass (a ``SCRIPT_NAME``
    among them sets SCRIPT_NAME, as in gunicorn)."""
    environ = base.copy()
    path = head.path
    if "%" in path:
        path = unquote_to_bytes(path).decode("latin-1")
    if "SCRIPT_NAME" in forwarder_fields:
        environ["SCRIPT_NAME"] = head.headers["SCRIPT_NAME"].rstrip("/")
    script_name = environ["SCRIPT_NAME"]
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        path = path[len(script_name):]
    environ["REQUEST_METHOD"] = head.method
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = head.query
    environ["RAW_URI"] = head.target
    environ["SERVER_PROTOCOL"] = "HTTP/%d.%d" % head.version
    environ["wsgi.url_scheme"] = url_scheme
    environ["wsgi.input"] = wsgi_input
    environ["wsgi.input_terminated"] = True
    _add_peer(environ, peername)
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    for name, value in head.headers.items():
        key = name.upper()
        if "_" in key and key not in forwarder_fields:
            continue
        if key == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        if key == "CONTENT-LENGTH":
            continue  # the length the app will read is set above
        key = "HTTP_" + key.replace("-", "_")
        if key in environ:
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        environ[key] = value
    if host is not None:
        environ["HTTP_HOST"] = host
    else:
        host = head.headers.get("Host")
    _set_server_name(environ, host, sockname, url_scheme)
    return environ


def _add_peer(environ: dict, peername) -> None:
    if isinstance(peername, tuple):
        environ["REMOTE_ADDR"] = str(peername[0])
        environ["REMOTE_PORT"] = str(peername[1])
    else:  # a unix socket has no peer address
        environ["REMOTE_ADDR"] = ""
        environ["REMOTE_PORT"] = ""


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
