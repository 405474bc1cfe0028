"""Request: what a handler sees of one HTTP request.

    RequestHead (parser) ──► Request.method, path, query, headers, cookies, ...
    body Data ──► StreamReader (``request.content``) ──► read() / text() / json() / post() / multipart()

``content`` is the raw body stream, with the protocol core's whole API
(``readchunk()`` with chunk boundaries, ``iter_chunked``, ``async for line``...).
``read()`` and what builds on it undo a gzip or deflate ``Content-Encoding``
and keep at most ``client_max_size`` bytes (413 past it, decoded or not).
``post()`` keeps form fields in memory and streams file parts to temporary
files. ``remote`` and ``scheme`` come from the protocol, which knows about
trusted proxies.
"""

import datetime
import json
from collections import namedtuple
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType
from urllib.parse import unquote

from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy

from .compression import DecodingReader, request_coding
from .exceptions import HTTPRequestEntityTooLarge
from .multipart import MultipartReader, decode_text, read_form, too_many
from .response import parse_content_type
from .state import StateMapping
from .streams import StreamReader
from .urlencoded import parse_pairs

HttpVersion = namedtuple("HttpVersion", "major minor")


class Request(StateMapping):
    # Computed on first use; class-level until then.
    _body: bytes | None = None
    _post: MultiDictProxy | None = None
    _query: MultiDictProxy | None = None

    def __init__(self, head, content, protocol, app, tmp_dir: str | None = None):
        self.head = head
        self._content = content  # StreamReader; None for a request without a body: made when asked for
        self.protocol = protocol
        self.app = app
        self.match_info = None
        self.tmp_dir = tmp_dir
        self._state: dict = {}
        # Set by the protocol later, but set now (see StreamResponse._set_up).
        self._response = None  # the response that was prepared for this request
        self._task = None  # the task serving it

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


    @property
    def content(self) -> StreamReader:
        """The raw body stream (an empty, finished one for a request without a body)."""
        stream = self._content
        if stream is None:
            protocol = self.protocol
            stream = StreamReader(loop=getattr(protocol, "loop", None),
                                  on_first_read=getattr(protocol, "send_continue", None))
            stream.feed_eof()
            self._content = stream
        return stream

    @content.setter
    def content(self, stream: StreamReader) -> None:
        self._content = stream

    # -- request line and headers ----------------------------------------------------

    @property
    def method(self) -> str:
        return self.head.method

    @property
    def version(self) -> HttpVersion:
        return HttpVersion(*self.head.version)

    @property
    def raw_path(self) -> str:
        """The path and query as sent, percent-encoded (of an absolute-form target too:
        its scheme and authority are ``scheme`` and ``host``)."""
        head = self.head
        if head.target[:1] == "/" or head.target == "*":
            return head.target
        return f"{head.path}?{head.query}" if head.query else head.path

    @property
    def path(self) -> str:
        return unquote(self.head.path)

    @property
    def path_qs(self) -> str:
        query = self.head.query
        return f"{self.path}?{query}" if query else self.path

    @property
    def query_string(self) -> str:
        return self.head.query

    @property
    def query(self) -> MultiDictProxy:
        if self._query is None:
            self._query = MultiDictProxy(MultiDict(parse_pairs(self.head.query)))
        return self._query

    @property
    def headers(self) -> CIMultiDictProxy:
        return CIMultiDictProxy(self.head.headers)

    @property
    def raw_headers(self) -> tuple:
        return tuple(self.head.raw_headers)

    @property
    def keep_alive(self) -> bool:
        return self.head.keep_alive

    @property
    def remote(self) -> str | None:
        address = self.protocol.forwarded(self.head).client
        return str(address[0]) if address else None

    @property
    def scheme(self) -> str:
        return self.protocol.forwarded(self.head).scheme

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def host(self) -> str:
        """The Host the parser settled (an absolute-form target's authority included), a
        trusted proxy's when one is read; without one, the listening address (no DNS
        lookup on the loop, as ``socket.getfqdn()`` would make)."""
        host = self.protocol.forwarded(self.head).host or self.head.headers.get("Host")
        return host or _listening_address(self.protocol.sockname)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.raw_path}"

    @property
    def transport(self):
        return self.protocol.transport

    @property
    def content_type(self) -> str:
        return parse_content_type(self.head.headers.get("Content-Type", "application/octet-stream"))[0]

    @property
    def charset(self) -> str | None:
        value = self.head.headers.get("Content-Type")
        return parse_content_type(value)[1].get("charset") if value else None

    @property
    def content_length(self) -> int | None:
        """The Content-Length the client sent; None without one (or with a chunked body)."""
        return self.head.content_length if "Content-Length" in self.head.headers else None

    @property
    def body_exists(self) -> bool:
        return self.head.has_body

    @property
    def has_body(self) -> bool:
        return self.can_read_body

    @property
    def can_read_body(self) -> bool:
        stream = self._content
        return stream is not None and not stream.at_eof()

    @property
    def cookies(self) -> MappingProxyType:
        raw = self.head.headers.get("Cookie", "")
        parsed = SimpleCookie()
        try:
            parsed.load(raw)
        except CookieError:
            pass
        return MappingProxyType({name: morsel.value for name, morsel in parsed.items()})

    @property
    def if_modified_since(self) -> datetime.datetime | None:
        return _http_date(self.head.headers.get("If-Modified-Since"))

    @property
    def if_unmodified_since(self) -> datetime.datetime | None:
        return _http_date(self.head.headers.get("If-Unmodified-Since"))

    @property
    def if_range(self) -> datetime.datetime | None:
        return _http_date(self.head.headers.get("If-Range"))

    # -- body ------------------------------------------------------------------------------

    def decoded_content(self):
        """The body stream with its Content-Encoding undone, bounded by ``client_max_size``."""
        coding = request_coding(self.head.headers)
        if coding is None:
            return self.content
        return DecodingReader(self.content, coding, self.app.client_max_size)

    async def read(self) -> bytes:
        """The whole body (decoded), at most ``client_max_size`` bytes."""
        if self._body is None:
            limit = self.app.client_max_size
            self._check_declared_size()
            source = self.decoded_content()
            parts, size = [], 0
            while chunk := await source.readany():
                size += len(chunk)
                if limit and size > limit:
                    raise HTTPRequestEntityTooLarge(limit, size)
                parts.append(chunk)
            self._body = b"".join(parts)
        return self._body

    async def text(self) -> str:
        """The body in its charset (UTF-8 if none is named); 400 for a charset that is not
        one, or bytes that are not in it (as for form fields: ``decode_text``)."""
        return decode_text(await self.read(), self.charset or "utf-8")

    async def json(self, *, loads=json.loads):
        return loads(await self.text())

    async def post(self) -> MultiDictProxy:
        """Form fields of a urlencoded or multipart body; files as ``FileField`` (spooled).

        The app's caps apply: ``client_max_size`` to the whole body, ``max_form_fields`` to
        the fields, ``max_form_parts`` and ``max_form_files`` to a multipart body's parts.
        """
        if self._post is not None:
            return self._post
        if self.method not in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"):
            self._post = MultiDictProxy(MultiDict())
            return self._post
        ctype, app = self.content_type, self.app
        if ctype == "application/x-www-form-urlencoded":
            charset = self.charset or "utf-8"
            form = parse_urlencoded(decode_text(await self.read(), charset), charset, app.max_form_fields)
        elif ctype == "multipart/form-data":
            self._check_declared_size()
            form = await read_form(await self.multipart(), app.client_max_size, self.tmp_dir,
                                   max_parts=app.max_form_parts, max_files=app.max_form_files,
                                   max_fields=app.max_form_fields)
        else:
            form = MultiDict()
        self._post = MultiDictProxy(form)
        return self._post

    def _check_declared_size(self) -> None:
        """413 before reading when the Content-Length is over ``client_max_size`` (unless decoded)."""
        limit, declared = self.app.client_max_size, self.head.content_length
        if limit and declared is not None and declared > limit and request_coding(self.head.headers) is None:
            raise HTTPRequestEntityTooLarge(limit, declared)

    async def multipart(self) -> MultipartReader:
        """The body's parts one by one, with no cap on their number or size (the handler reads them)."""
        return MultipartReader(self.head.headers, self.decoded_content())

    async def release(self) -> None:
        """Read and drop what is left of the body."""
        while await self.content.readany():
            pass

    # -- server side ------------------------------------------------------------------------

    def claim_response(self, response) -> None:
        """Record ``response`` as the one being sent; a second one is an error."""
        if self._response is not None and self._response is not response:
            raise RuntimeError("Another response was already prepared for this request")
        self._response = response

    @property
    def prepared_response(self):
        return self._response


def parse_urlencoded(text: str, encoding: str, max_fields: int) -> MultiDict:
    """The pairs of a urlencoded body (``text``, already decoded: ``encoding`` is a charset
    ``decode_text`` accepts); 413 past ``max_fields`` of them, counted before parsing as
    ``&``-separated pieces (Django's and Python's ``max_num_fields``)."""
    try:
        return MultiDict(parse_pairs(text, encoding, max_fields or None))
    except ValueError:
        raise too_many("fields", max_fields) from None


def _listening_address(sockname) -> str:
    if not isinstance(sockname, tuple):
        return "localhost"  # a unix socket
    host = str(sockname[0])
    return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"


def _http_date(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a year past datetime
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed
