"""Incremental uwsgi request parser: bytes in, the HTTP parser's events out (sans-IO).

    transport ──bytes──► connection ──feed(bytes)──► UwsgiParser
                                     ◄──[RequestHead, Data..., EndOfMessage]──

A uwsgi request (what nginx's ``uwsgi_pass`` sends) is one packet and a body:

    modifier1 u8 | datasize u16le | modifier2 u8 | datasize bytes of vars
    each var: keysize u16le | key | valsize u16le | value
    then CONTENT_LENGTH bytes of body

Only modifier1 0 (a WSGI request) is served, as gunicorn does. The vars are CGI
variables: REQUEST_METHOD, REQUEST_URI (else PATH_INFO and QUERY_STRING),
SERVER_PROTOCOL, CONTENT_LENGTH, CONTENT_TYPE and one HTTP_* var per request
header. They are turned back into a request line and header fields and go through
the same checks and the same ``build_head`` as an HTTP request, so every app kind
and every check downstream sees an ordinary ``RequestHead``. As in gunicorn, HTTPS
(on, 1, true) or a ``wsgi.url_scheme`` var set the scheme (``scheme``, read by the
connection); the client address stays the peer's (gunicorn does not read
REMOTE_ADDR either).

The HTTP limits hold: the request line (method, target, protocol), the number and
size of header fields, the body; the packet itself may be no bigger than a whole
HTTP head and ``CGI_BYTES`` (refused as soon as its size is read). Errors are
``HttpError`` exceptions, as with HTTP; after one the parser is unusable and the
connection closes. The body is the CONTENT_LENGTH bytes after
the packet, never chunked: the client's Transfer-Encoding (HTTP_TRANSFER_ENCODING)
described the hop to the front end, not this one, and is dropped.
"""

from urllib.parse import quote

from . import grammar
from .bodyreader import BodyReader
from .errors import BadRequest, HeaderFieldsTooLarge, NotImplementedByServer, UriTooLong
from .headreader import _parse_request_line, _split_target, build_head, parse_field_lines
from .host import settle_host
from .limits import Limits
from .parser import RequestParser, _by_state
from .parserstate import BODY, DONE, HEAD

PACKET_HEAD = 4  # modifier1, datasize (2), modifier2
CGI_VARS = 64  # vars other than HTTP_* a packet may hold (nginx's uwsgi_params sends 15)
CGI_BYTES = 8192  # bytes a packet may hold besides what a whole HTTP head may (its CGI vars, the sizes)
WSGI_REQUEST = 0  # modifier1 of a WSGI request
REQUEST_VARS = frozenset(("REQUEST_METHOD", "REQUEST_URI", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
                          "CONTENT_LENGTH", "CONTENT_TYPE", "HTTPS", "wsgi.url_scheme"))
DROPPED_FIELDS = frozenset(("TRANSFER_ENCODING",))  # HTTP_* vars that are not this hop's
TRUE_VALUES = ("on", "1", "true")
PATH_SAFE = "/:@!$&'()*+,;=~"  # what stays as is when PATH_INFO (decoded) becomes a target


class UwsgiParser(RequestParser):
    """The ``RequestParser`` interface (``feed``, ``next_request``, ``state``, ``buffer``,
    ``in_message``, ``done``, ``detach``, ``feed_eof``) over uwsgi packets; the body is
    read by the HTTP parser's Content-Length reader."""

    def __init__(self, limits: Limits = Limits()):
        super().__init__(limits)
        self.scheme: str | None = None  # what the last packet said of the scheme, if anything

    def feed(self, data: bytes) -> list:
        """Take more bytes; return the events they complete (maybe none)."""
        self.buffer += data
        if self.state == DONE:
            return []
        return self._run()

    def _read_packet(self, events: list) -> bool:
        """Parse the packet once it is all buffered; False while it is not."""
        buf = self.buffer
        if buf[0] != WSGI_REQUEST:
            raise NotImplementedByServer(f"Unsupported uwsgi modifier1 {buf[0]}")
        if len(buf) < PACKET_HEAD:
            return False
        end = PACKET_HEAD + (buf[1] | buf[2] << 8)
        if end > self._head_size + CGI_BYTES:
            raise HeaderFieldsTooLarge("Request header fields too large")
        if len(buf) < end:
            return False
        packet = bytes(buf[PACKET_HEAD:end])
        del buf[:end]
        cgi, fields = split_vars(read_vars(packet, self.limits.fields + CGI_VARS))
        head = head_from_vars(cgi, fields, self.limits)
        self.scheme = scheme_of(cgi)
        self._start_body(head)
        events.append(head)
        if not head.has_body:
            self._finish(events)
        return True

    _STEPS = _by_state({HEAD: _read_packet, BODY: BodyReader._body_data})


def read_vars(packet: bytes, most: int) -> list[tuple[str, str]]:
    """The (key, value) vars of a packet, in order; at most ``most`` of them."""
    found = []
    pos = 0
    size = len(packet)
    while pos < size:
        if len(found) == most:
            raise HeaderFieldsTooLarge("Too many uwsgi vars")
        key, pos = _read_string(packet, pos, size)
        value, pos = _read_string(packet, pos, size)
        found.append((key, value))
    return found


def _read_string(packet: bytes, pos: int, size: int) -> tuple[str, int]:
    """The u16le-sized string at ``pos`` and where the next one starts."""
    if pos + 2 > size:
        raise BadRequest("Truncated uwsgi var size")
    end = pos + 2 + (packet[pos] | packet[pos + 1] << 8)
    if end > size:
        raise BadRequest("Truncated uwsgi var")
    return packet[pos + 2:end].decode("latin-1"), end


def head_from_vars(cgi: dict, fields: list, limits: Limits):
    """The ``RequestHead`` the vars describe, checked as an HTTP head would be."""
    method = cgi.get("REQUEST_METHOD", "GET")  # gunicorn's default
    target = cgi.get("REQUEST_URI") or _target_from_path(cgi)
    protocol = _protocol(cgi.get("SERVER_PROTOCOL", "HTTP/1.1"))
    line = f"{method} {target} {protocol}".encode("latin-1")
    if len(line) > limits.request_line:
        raise UriTooLong("Request line too long")
    method, target, version = _parse_request_line(line)
    lines = [b""] + [f"{name}: {value}".encode("latin-1") for name, value in _header_fields(cgi, fields)]
    headers, raw = parse_field_lines(lines, 1, limits)
    path, query = _split_target(method, target)
    head = build_head(method, target, path, query, version, headers, raw)
    settle_host(head)
    head.upgrade = False  # nothing can switch protocols through a uwsgi front end
    head.expect_continue = False  # the front end answered it: a 100 here would be taken for the response
    return head


def split_vars(uwsgi_vars: list[tuple[str, str]]) -> tuple[dict, list]:
    """The vars that make the request (each at most once) and the HTTP_* ones as fields."""
    cgi: dict[str, str] = {}
    fields = []
    for key, value in uwsgi_vars:
        if key.startswith("HTTP_"):
            name = key[5:]
            if grammar.token.fullmatch(name.encode("latin-1")) is None:
                raise BadRequest("Invalid header name in uwsgi var")
            if name not in DROPPED_FIELDS:
                fields.append((name.replace("_", "-"), value))
        elif key in REQUEST_VARS:
            if key in cgi:
                raise BadRequest(f"More than one uwsgi var {key}")
            cgi[key] = value
    return cgi, fields


def _header_fields(cgi: dict, fields: list) -> list[tuple[str, str]]:
    """The header fields: the HTTP_* vars, with CONTENT_LENGTH and CONTENT_TYPE in place of
    the HTTP_CONTENT_* ones (a front end may send both: they must agree)."""
    for var, name in (("CONTENT_LENGTH", "CONTENT-LENGTH"), ("CONTENT_TYPE", "CONTENT-TYPE")):
        value = cgi.get(var)
        if not value:  # nginx sends CONTENT_LENGTH "" for a request without a body
            continue
        if any(n == name and v != value for n, v in fields):
            raise BadRequest(f"uwsgi var {var} disagrees with the request's header")
        fields = [(n, v) for n, v in fields if n != name] + [(name, value)]
    return fields


def _protocol(protocol: str) -> str:
    """HTTP/1.0 stays itself; any later version (a front end's HTTP/2 or HTTP/3 client)
    is served as HTTP/1.1, the version gunicorn gives every uwsgi request."""
    m = grammar.http_version.fullmatch(protocol.encode("latin-1"))
    if m is None:
        raise BadRequest("Invalid uwsgi var SERVER_PROTOCOL")
    return protocol if protocol == "HTTP/1.0" else "HTTP/1.1"


def _target_from_path(cgi: dict) -> str:
    """The request-target without REQUEST_URI: PATH_INFO (decoded by the front end, so
    encoded again) and QUERY_STRING."""
    path = quote(cgi.get("PATH_INFO") or "/", safe=PATH_SAFE, encoding="latin-1")
    query = cgi.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def scheme_of(cgi: dict) -> str | None:
    """The scheme the vars name, as gunicorn reads it: HTTPS on/1/true, else wsgi.url_scheme."""
    if cgi.get("HTTPS", "").lower() in TRUE_VALUES:
        return "https"
    scheme = cgi.get("wsgi.url_scheme")
    if scheme is None:
        return None
    if scheme not in ("http", "https"):
        raise BadRequest("Invalid uwsgi var wsgi.url_scheme")
    return scheme
