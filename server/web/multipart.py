"""multipart/form-data, read incrementally from the request body stream.

    body stream ──readany()──► MultipartReader ──next()──► BodyPartReader ──read_chunk()──► bytes
                                                  └─► read_form(): fields in memory, files in temp files

The reader never holds more than one read of the stream plus a delimiter's
length: part data is handed out as soon as it cannot be the start of the
next delimiter. Malformed bodies give 400; a part head longer than
``MAX_PART_HEAD`` gives 400 too, so headers cannot grow memory.
"""

import json
import tempfile
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from .exceptions import HTTPBadRequest, HTTPRequestEntityTooLarge
from .response import parse_content_type
from .streams import ReadIterator

MAX_PART_HEAD = 16 * 1024
FILE_CHUNK = 256 * 1024


@dataclass(slots=True)
class FileField:
    """A file part of a form: ``file`` is a temporary file positioned at its start."""

    name: str
    filename: str
    file: object
    content_type: str
    headers: CIMultiDictProxy


def parse_content_disposition(value: str | None) -> tuple[str | None, dict]:
    """``form-data; name="a"; filename="b.txt"`` → ``("form-data", {"name": "a", "filename": "b.txt"})``."""
    if not value:
        return None, {}
    kind, _, rest = value.partition(";")
    params: dict[str, str] = {}
    while rest:
        rest = rest.lstrip(" \t;")
        key, sep, rest = rest.partition("=")
        key = key.strip().lower()
        if not sep:
            break
        rest = rest.lstrip(" \t")
        if rest.startswith('"'):
            val, rest = _quoted(rest)
        else:
            val, _, rest = rest.partition(";")
            val = val.strip()
        if key.endswith("*"):  # RFC 5987: charset'lang'percent-encoded
            charset, _, encoded = val.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                params[key[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
        elif key not in params:
            params[key] = val
    return kind.strip().lower(), params


def _quoted(text: str) -> tuple[str, str]:
    out = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), text[i + 1:]
        out.append(c)
        i += 1
    return "".join(out), ""


class MultipartReader(ReadIterator):
    def __init__(self, headers, source):
        ctype, params = parse_content_type(headers.get("Content-Type", ""))
        boundary = params.get("boundary", "")
        if not ctype.startswith("multipart/") or not 0 < len(boundary) <= 70:
            raise HTTPBadRequest(text=f"Invalid multipart Content-Type: {headers.get('Content-Type')!r}")
        self.headers = headers
        self._source = source
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = bytearray(b"\r\n")  # the first delimiter then looks like all others
        self._source_done = False
        self._started = False
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
        await self._fill(2)
        if self._buffer.startswith(b"--"):
            self._done = True
            self._current = None
            return None
        await self._read_line()  # the rest of the delimiter line (transport padding)
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
        self._buffer += data
        return True

    async def _fill(self, n: int) -> None:
        while len(self._buffer) < n:
            if not await self._more():
                raise HTTPBadRequest(text="Unexpected end of the multipart body")

    async def _skip_preamble(self) -> None:
        keep = len(self._delimiter) - 1
        while True:
            idx = self._buffer.find(self._delimiter)
            if idx >= 0:
                del self._buffer[: idx + len(self._delimiter)]
                return
            if len(self._buffer) > keep:
                del self._buffer[:-keep]
            if not await self._more():
                raise HTTPBadRequest(text="No multipart boundary found in the body")

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
            if not sep or not name or name != name.strip():
                raise HTTPBadRequest(text=f"Malformed multipart header line: {line[:100]!r}")
            headers.add(name, value.strip(" \t"))
        return CIMultiDictProxy(headers)

    async def _part_data(self, size: int) -> bytes | None:
        """Up to ``size`` bytes of the current part; None at its end (delimiter consumed)."""
        delimiter = self._delimiter
        while True:
            buffer = self._buffer
            idx = buffer.find(delimiter)
            if idx == 0:
                del buffer[: len(delimiter)]
                return None
            if idx > 0:
                return self._take(min(idx, size))
            safe = len(buffer) - (len(delimiter) - 1)
            if safe > 0:
                return self._take(min(safe, size))
            if not await self._more():
                raise HTTPBadRequest(text="Unexpected end of the multipart body")

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data


class BodyPartReader(ReadIterator):
    def __init__(self, reader: MultipartReader, headers: CIMultiDictProxy):
        self._reader = reader
        self.headers = headers
        self._eof = False
        _, params = parse_content_disposition(headers.get("Content-Disposition"))
        self.name: str | None = params.get("name")
        self.filename: str | None = params.get("filename")

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
        return (await self.read()).decode(encoding or self.get_charset())

    async def json(self, *, encoding: str | None = None):
        return json.loads(await self.text(encoding=encoding))

    async def form(self, *, encoding: str | None = None) -> list[tuple[str, str]]:
        return parse_qsl(await self.text(encoding=encoding), keep_blank_values=True)

    async def release(self) -> None:
        while await self.read_chunk(FILE_CHUNK):
            pass


async def read_form(reader: MultipartReader, max_size: int, tmp_dir: str | None) -> MultiDict:
    """All parts: fields decoded into memory, files streamed to temporary files.

    ``max_size`` (0: none) bounds the sum of all parts, files included, as
    aiohttp's ``client_max_size`` does.
    """
    form = MultiDict()
    total = 0
    try:
        async for part in reader:
            if part.name is None:
                await part.release()
                continue
            if part.filename is None:
                value = await part.read(max_size=max_size - total if max_size else None)
                total += len(value)
                form.add(part.name, value.decode(part.get_charset()))
                continue
            field = FileField(part.name, part.filename, tempfile.TemporaryFile(dir=tmp_dir),
                              part.headers.get("Content-Type", "application/octet-stream"), part.headers)
            form.add(part.name, field)
            total = await _spool(part, field.file, total, max_size)
    except BaseException:
        for value in form.values():
            if isinstance(value, FileField):
                value.file.close()
        raise
    return form


async def _spool(part: BodyPartReader, file, total: int, max_size: int) -> int:
    while data := await part.read_chunk(FILE_CHUNK):
        total += len(data)
        if max_size and total > max_size:
            raise HTTPRequestEntityTooLarge(max_size, total)
        file.write(data)
    file.seek(0)
    return total
