"""multipart/form-data, read incrementally from the request body stream.

    body stream ──readany()──► MultipartReader ──next()──► BodyPartReader ──read_chunk()──► bytes
                                                  └─► read_form(): fields in memory, files spooled

The reader never holds more than one read of the stream plus a delimiter line:
part data is handed out as soon as it cannot be the start of the next delimiter,
and every byte is looked at a bounded number of times (no rescans, no
backtracking patterns). Delimiters follow RFC 2046 section 5.1.1: ``--boundary``
at the start of a line, then only optional whitespace and CRLF; a line that
starts with the boundary followed by anything else is part data, except that
whitespace followed by something other than CRLF is malformed (400), and
``--boundary--`` ends the body whatever follows (the epilogue, never read).
What other parsers could read differently is refused with 400 rather than
guessed: a Content-Type with two boundaries or malformed parameters, a part with
two Content-Disposition headers or two names. Part heads longer than
``MAX_PART_HEAD`` give 400, so heads cannot grow memory.

``read_form`` (``Request.post()``) bounds the whole body (``max_size``, 413),
the number of parts, of file parts and of fields (413), and decodes fields only
in a codec that is a charset (``decode_text``); file data is kept in
memory up to ``FORM_FILE_MEMORY`` bytes per form, then goes to temporary files,
so an empty or small file costs no descriptor. On any error every file made so
far is closed (a temporary file is deleted when closed).
"""

import codecs
import json
import re
import tempfile
from dataclasses import dataclass
from urllib.parse import unquote

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from .exceptions import HTTPBadRequest, HTTPRequestEntityTooLarge
from .response import parse_content_type
from .streams import ReadIterator
from .urlencoded import parse_pairs

MAX_PART_HEAD = 16 * 1024
FILE_CHUNK = 256 * 1024
# Defaults of the form caps, as Werkzeug (max_form_parts) and Starlette (max_files, max_fields) set them.
MAX_FORM_PARTS = 1000
MAX_FORM_FILES = 1000
MAX_FORM_FIELDS = 1000
FORM_FILE_MEMORY = 1024 * 1024

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_HEADER_NAME = re.compile(_TOKEN)
# One "key=value" of a header's parameters: the value a run up to ";" or a quoted-string.
_KEY_VALUE = re.compile(r'(' + _TOKEN + r')[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^; \t"]*))[ \t]*')
_SEPARATORS = re.compile(r"[ \t]*(?:;[ \t]*)*")
_QUOTED_PAIR = re.compile(r"\\(.)")
_BOUNDARY = re.compile(r"[ -~]{0,69}[!-~]")  # RFC 2046: 1 to 70 characters, not ending in a space
_LWSP = re.compile(rb"[ \t]*")
# Text codecs that are no charset a form is sent in; punycode also decodes in quadratic time.
_NOT_CHARSETS = frozenset({"punycode", "idna", "unicode-escape", "raw-unicode-escape"})


def parse_params(text: str) -> list[tuple[str, str]] | None:
    """``'; a=1; b="x;y"'`` → ``[("a", "1"), ("b", "x;y")]`` (keys lowercased); None if malformed.

    Quoted-strings may hold ``;`` and backslash escapes; empty ``;`` segments are skipped.
    """
    params, pos, end = [], 0, len(text)
    while True:
        skipped = _SEPARATORS.match(text, pos)
        pos = skipped.end()
        if pos >= end:
            return params
        match = _KEY_VALUE.match(text, pos) if ";" in skipped.group() else None
        if match is None:
            return None
        quoted, plain = match.group(2), match.group(3)
        params.append((match.group(1).lower(), plain if quoted is None else _QUOTED_PAIR.sub(r"\1", quoted)))
        pos = match.end()


def parse_content_disposition(value: str | None) -> tuple[str | None, dict]:
    """``form-data; name="a"; filename="b.txt"`` → ``("form-data", {"name": "a", "filename": "b.txt"})``.

    The first of repeated parameters wins; an RFC 5987 ``key*`` (charset'lang'percent-encoded)
    wins over ``key``. Malformed parameters give ``{}``.
    """
    if not value:
        return None, {}
    kind, sep, rest = value.partition(";")
    params: dict[str, str] = {}
    for key, val in parse_params(sep + rest) or ():
        if key.endswith("*"):
            charset, _, encoded = val.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                params[key[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
        elif key not in params:
            params[key] = val
    return kind.strip().lower(), params


def form_part_names(headers) -> tuple[str | None, str | None]:
    """``(name, filename)`` of a form part: its one Content-Disposition's plain parameters.

    ``name*``/``filename*`` are ignored (RFC 7578 section 4.2 forbids them in form data);
    what parsers could read differently (two Content-Disposition headers, a repeated
    ``name`` or ``filename``, malformed parameters) is a 400.
    """
    values = headers.getall("Content-Disposition", [])
    if not values:
        return None, None
    if len(values) > 1:
        raise HTTPBadRequest(text="A multipart part with more than one Content-Disposition")
    _, sep, rest = values[0].partition(";")
    params = parse_params(sep + rest)
    if params is None:
        raise HTTPBadRequest(text=f"Malformed Content-Disposition: {values[0][:200]!r}")
    found: dict[str, str] = {}
    for key, value in params:
        if key in ("name", "filename"):
            if key in found:
                raise HTTPBadRequest(text=f"A Content-Disposition with two {key} parameters")
            found[key] = value
    return found.get("name"), found.get("filename")


def multipart_boundary(content_type: str) -> str:
    """The one ``boundary`` parameter of a multipart Content-Type; 400 if there is not exactly one
    valid one (1 to 70 printable characters)."""
    mime, sep, rest = content_type.partition(";")
    params = parse_params(sep + rest)
    boundaries = [value for key, value in params or () if key == "boundary"]
    if (not mime.strip().lower().startswith("multipart/") or len(boundaries) != 1
            or not _BOUNDARY.fullmatch(boundaries[0])):
        raise HTTPBadRequest(text=f"Invalid multipart Content-Type: {content_type[:200]!r}")
    return boundaries[0]


@dataclass(slots=True)
class FileField:
    """A file part of a form: ``file`` is a ``tempfile.SpooledTemporaryFile`` positioned at
    its start (in memory while small; ``fileno()`` moves it to disk)."""

    name: str
    filename: str
    file: object
    content_type: str
    headers: CIMultiDictProxy


class MultipartReader(ReadIterator):
    def __init__(self, headers, source, *, max_size: int = 0):
        boundary = multipart_boundary(headers.get("Content-Type", ""))
        self.headers = headers
        self.max_size = max_size  # 0: unbounded; else the body read past it is a 413
        self._source = source
        self._received = 0
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = bytearray(b"\r\n")  # the first delimiter then looks like all others
        self._ready = 0  # bytes at the buffer's start known to be part data
        self._padding_scanned = 0  # how far a delimiter line's padding was scanned, while waiting for more
        self._source_done = False
        self._started = False
        self._closed = False  # the close delimiter was read
        self._done = False
        self._current: BodyPartReader | None = None

    def at_eof(self) -> bool:
        return self._done

    async def next(self) -> "BodyPartReader | None":
        if self._done:
            return None
        if self._current is not None:
            await self._current.release()
        elif not self._started:
            await self._skip_preamble()
        self._started = True
        if self._closed:
            self._done = True
            self._current = None
            return None
        self._current = BodyPartReader(self, await self._read_head())
        return self._current

    # async for: the parts, until next() returns None
    _read_next = next
    _end = None

    async def release(self) -> None:
        while await self.next() is not None:
            pass

    # -- buffer ---------------------------------------------------------------------

    async def _more(self) -> bool:
        if self._source_done:
            return False
        data = await self._source.readany()
        if not data:
            self._source_done = True
            return False
        self._received += len(data)
        if self.max_size and self._received > self.max_size:
            raise HTTPRequestEntityTooLarge(self.max_size, self._received)
        self._buffer += data
        return True

    async def _skip_preamble(self) -> None:
        """Up to the first delimiter line. A ``--boundary`` anywhere else in the preamble is a
        400: python-multipart takes one after other bytes on a line for the first delimiter,
        where the RFC (and Werkzeug, and this parser) sees preamble, so a field would be seen
        by one parser and not another."""
        keep = len(self._delimiter) - 1
        dash_boundary = self._delimiter[2:]
        while True:
            idx = self._buffer.find(self._delimiter)
            stray = self._buffer.find(dash_boundary, 0, len(self._buffer) if idx < 0 else idx + 1)
            if stray >= 0 and (idx < 0 or stray < idx + 2) and self._buffer[max(stray - 2, 0):stray] != b"\r\n":
                raise HTTPBadRequest(text="Multipart boundary inside the preamble")
            if idx >= 0:
                del self._buffer[:idx]
                if await self._at_delimiter():
                    return
                del self._buffer[:1]
                continue
            if len(self._buffer) > keep:
                del self._buffer[:-keep]
            if not await self._more():
                raise HTTPBadRequest(text="No multipart boundary found in the body")

    async def _at_delimiter(self) -> bool:
        """The buffer starts with ``CRLF--boundary``: if that starts a delimiter line, consume
        the line and say True; False if it is part data."""
        while (line := self._delimiter_line()) is None:
            await self._more()
        if line is False:
            return False
        end, self._closed = line
        del self._buffer[:end]
        return True

    def _delimiter_line(self) -> tuple[int, bool] | bool | None:
        """(length of the delimiter line, close?), False if this is no delimiter, None if more
        bytes are needed to tell. Padding already scanned is not scanned again."""
        buf, start, eof = self._buffer, len(self._delimiter), self._source_done
        after = buf[start:start + 2]
        if after == b"--":
            return start + 2, True
        if after == b"-":
            return False if eof else None
        end = _LWSP.match(buf, max(start, self._padding_scanned)).end()
        if end - start > MAX_PART_HEAD:
            raise HTTPBadRequest(text="Multipart delimiter line too long")
        tail = buf[end:end + 2]
        if tail == b"\r\n":
            self._padding_scanned = 0
            return end + 2, False
        if not eof and tail in (b"", b"\r"):
            self._padding_scanned = end
            return None
        self._padding_scanned = 0
        if end > start:  # "--boundary" and whitespace, then something else: no line of data may look so
            raise HTTPBadRequest(text="Malformed multipart delimiter line")
        return False

    async def _read_line(self) -> bytes:
        start = 0
        while True:
            idx = self._buffer.find(b"\r\n", start)
            if idx >= 0:
                line = bytes(self._buffer[:idx])
                del self._buffer[: idx + 2]
                return line
            if len(self._buffer) > MAX_PART_HEAD:
                raise HTTPBadRequest(text="Multipart part head too long")
            start = max(len(self._buffer) - 1, 0)
            if not await self._more():
                raise HTTPBadRequest(text="Unexpected end of the multipart body")

    async def _read_head(self) -> CIMultiDictProxy:
        headers = CIMultiDict()
        size = 0
        while line := await self._read_line():
            size += len(line) + 2
            if size > MAX_PART_HEAD:
                raise HTTPBadRequest(text="Multipart part head too long")
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep or not _HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
                raise HTTPBadRequest(text=f"Malformed multipart header line: {line[:100]!r}")
            headers.add(name, value.strip(" \t"))
        return CIMultiDictProxy(headers)

    async def _part_data(self, size: int) -> bytes | None:
        """Up to ``size`` bytes of the current part; None at its end (delimiter consumed)."""
        delimiter = self._delimiter
        while True:
            if self._ready:
                return self._take(min(self._ready, size))
            idx, least = self._buffer.find(delimiter), 0
            if idx == 0:
                if await self._at_delimiter():
                    return None
                idx, least = self._buffer.find(delimiter, 1), 1  # no delimiter: data up to the next one
            if idx > 0:
                self._ready = idx
            else:
                self._ready = max(len(self._buffer) - (len(delimiter) - 1), least)
                if not self._ready and not await self._more():
                    raise HTTPBadRequest(text="Unexpected end of the multipart body")

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        self._ready -= n
        return data


class BodyPartReader(ReadIterator):
    def __init__(self, reader: MultipartReader, headers: CIMultiDictProxy):
        self._reader = reader
        self.headers = headers
        self._eof = False
        self.name, self.filename = form_part_names(headers)

    def __repr__(self) -> str:
        return f"<BodyPartReader name={self.name!r} filename={self.filename!r}>"

    @property
    def content_type(self) -> str:
        return parse_content_type(self.headers.get("Content-Type", "text/plain"))[0]

    def get_charset(self, default: str = "utf-8") -> str:
        return parse_content_type(self.headers.get("Content-Type", ""))[1].get("charset", default)

    def at_eof(self) -> bool:
        return self._eof

    async def read_chunk(self, size: int = 8192) -> bytes:
        """Up to ``size`` bytes of the part; b"" at its end."""
        if self._eof:
            return b""
        data = await self._reader._part_data(size)
        if data is None:
            self._eof = True
            return b""
        return data

    # async for: the part's chunks, until read_chunk() returns b""
    _read_next = read_chunk

    async def read(self, *, decode: bool = False, max_size: int | None = None) -> bytes:
        """The whole part; ``max_size`` bounds what is kept (413 past it)."""
        parts, size = [], 0
        while data := await self.read_chunk(FILE_CHUNK):
            size += len(data)
            if max_size is not None and size > max_size:
                raise HTTPRequestEntityTooLarge(max_size, size)
            parts.append(data)
        return b"".join(parts)

    async def text(self, *, encoding: str | None = None) -> str:
        return decode_text(await self.read(), encoding or self.get_charset())

    async def json(self, *, encoding: str | None = None):
        return json.loads(await self.text(encoding=encoding))

    async def form(self, *, encoding: str | None = None) -> list[tuple[str, str]]:
        return parse_pairs(await self.text(encoding=encoding))

    async def release(self) -> None:
        while await self.read_chunk(FILE_CHUNK):
            pass


def too_many(what: str, limit: int) -> HTTPRequestEntityTooLarge:
    return HTTPRequestEntityTooLarge(limit, limit + 1, text=f"Too many {what} in the form (at most {limit})")


@dataclass(slots=True)
class _FormCounts:
    parts: int = 0
    files: int = 0
    fields: int = 0
    in_memory: int = 0  # file bytes held in memory

    def count(self, what: str, limit: int) -> None:
        """One more of ``what``; 413 past ``limit`` (0: no limit)."""
        n = getattr(self, what) + 1
        setattr(self, what, n)
        if limit and n > limit:
            raise too_many(what, limit)


async def read_form(reader: MultipartReader, max_size: int, tmp_dir: str | None, *,
                    max_parts: int = MAX_FORM_PARTS, max_files: int = MAX_FORM_FILES,
                    max_fields: int = MAX_FORM_FIELDS) -> MultiDict:
    """All parts: fields decoded into memory, files spooled (memory, then temporary files).

    ``max_size`` (0: none) bounds the whole body as read, delimiters and heads included, as
    aiohttp's ``client_max_size`` bounds a body; ``max_parts`` bounds all parts, ``max_files``
    the file parts (so the temporary files open at once) and ``max_fields`` the others.
    """
    if max_size:
        reader.max_size = max_size
    form, counts = MultiDict(), _FormCounts()
    try:
        async for part in reader:
            counts.count("parts", max_parts)
            if part.name is None:
                raise HTTPBadRequest(text="A form part without a name")
            if part.filename is None:
                counts.count("fields", max_fields)
                form.add(part.name, decode_text(await part.read(), part.get_charset()))
                continue
            counts.count("files", max_files)
            field = FileField(part.name, part.filename, tempfile.SpooledTemporaryFile(dir=tmp_dir),
                              part.headers.get("Content-Type", "application/octet-stream"), part.headers)
            form.add(part.name, field)
            await _spool(part, field.file, counts)
    except BaseException:
        for value in form.values():
            if isinstance(value, FileField):
                value.file.close()
        raise
    return form


def decode_text(data: bytes, charset: str) -> str:
    """``data`` in the ``charset`` a client named; 400 for an unknown codec, one that is not a
    charset (bytes-to-bytes, punycode, ...) or bytes that are not in it."""
    try:
        codec = codecs.lookup(charset)
        if codec.name in _NOT_CHARSETS:
            raise LookupError(charset)
        return data.decode(codec.name)
    except (LookupError, UnicodeDecodeError):
        raise HTTPBadRequest(text=f"Request data that is not valid {charset[:40]!r}") from None


async def _spool(part: BodyPartReader, file, counts: _FormCounts) -> None:
    """The part's data into ``file``: in memory while the form's file data fits in
    ``FORM_FILE_MEMORY``, on disk from the chunk that would not fit."""
    on_disk = False
    while data := await part.read_chunk(FILE_CHUNK):
        if not on_disk and counts.in_memory + len(data) > FORM_FILE_MEMORY:
            file.rollover()
            on_disk = True
        if not on_disk:
            counts.in_memory += len(data)
        file.write(data)
    file.seek(0)
