"""FileResponse: a file from disk, with conditional and range requests.

    prepare(request) ──stat──► 304 / 412 / 416 / 206 (Content-Range) / 200
                     ──head──► channel.send_response
                     ──body──► channel.send_file: the one file sender of every app kind
                               (sendfile from the loop, or blocks read off it: protocol/files.py)

The validators are ``Last-Modified`` and an ``ETag`` from the modification time
and size. One byte range is served as 206; several ranges are answered with
the whole file, which RFC 9110 allows. ``If-Range`` must match, or the whole
file is sent: an entity tag compared strongly, a date only when it equals the
``Last-Modified`` sent (RFC 9110 s13.1.5). A position past any file size (more
digits than a 64-bit offset has) is read as "beyond the end", never converted.
"""

import asyncio
import datetime
import mimetypes
import os
import re
import stat
from email.utils import format_datetime

from .response import StreamResponse

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_MAX_DIGITS = 18  # any 18-digit position fits an os offset; a longer one is past the end
_BEYOND = 1 << 63  # what a longer position is read as: larger than any file


class FileResponse(StreamResponse):
    """``chunk_size`` is taken for aiohttp's signature; the blocks a file is read in when it
    cannot go by sendfile are the connection's file sender's (``protocol/files.py``)."""

    def __init__(self, path, chunk_size: int = 256 * 1024, status: int = 200, reason: str | None = None,
                 headers=None):
        super().__init__(status=status, reason=reason, headers=headers)
        self._path = os.fspath(path)
        self._chunk_size = chunk_size

    async def prepare(self, request):
        if self.prepared:
            return self._head
        loop = asyncio.get_running_loop()
        try:
            file, st = await loop.run_in_executor(None, _open, self._path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return await self._plain(request, 404, "404: Not Found")
        except PermissionError:
            return await self._plain(request, 403, "403: Forbidden")
        try:
            return await self._send_file(request, file, st)
        finally:
            file.close()

    async def _plain(self, request, status: int, text: str):
        self.set_status(status)
        self.content_type = "text/plain"
        self.charset = "utf-8"
        body = text.encode()
        self.content_length = len(body)
        head = await super().prepare(request)
        await self.write(body)
        return head

    async def _send_file(self, request, file, st):
        size = st.st_size
        etag = f'"{st.st_mtime_ns:x}-{size:x}"'
        mtime = datetime.datetime.fromtimestamp(int(st.st_mtime), datetime.timezone.utc)
        self._headers["ETag"] = etag
        self._headers["Last-Modified"] = format_datetime(mtime, usegmt=True)
        self._headers.setdefault("Accept-Ranges", "bytes")
        if "Content-Type" not in self._headers:
            ctype, _ = mimetypes.guess_type(self._path)
            self._headers["Content-Type"] = ctype or "application/octet-stream"
        status = self._precondition(request, etag, mtime)
        if status is not None:
            return await self._bodiless(request, status)
        offset, count = 0, size
        span = self._range(request, etag, mtime, size)
        if span == "unsatisfiable":
            self._headers["Content-Range"] = f"bytes */{size}"
            return await self._bodiless(request, 416)
        if span is not None:
            offset, count = span
            self.set_status(206)
            self._headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{size}"
        self._headers.pop("Content-Encoding", None)
        self._compression = False
        self.content_length = count
        head = await super().prepare(request)
        if not head.no_body and count:
            self._check_open()
            self._sent += await request.protocol.send_file(file, offset, count)
        return head

    async def _bodiless(self, request, status: int):
        """304, 412 or 416: the head only."""
        self.set_status(status)
        if status == 304:
            self._headers.pop("Content-Type", None)
            self.content_length = None
        else:
            self.content_length = 0
        return await super().prepare(request)

    @staticmethod
    def _precondition(request, etag: str, mtime: datetime.datetime) -> int | None:
        """304 or 412 from the conditional headers, or None to go on."""
        headers = request.headers
        unmodified = request.if_unmodified_since
        if unmodified is not None and mtime > unmodified:
            return 412
        if request.method not in ("GET", "HEAD"):
            return None
        none_match = headers.get("If-None-Match")
        if none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in none_match.split(",")}
            return 304 if "*" in tags or etag in tags else None
        modified = request.if_modified_since
        if modified is not None and mtime <= modified:
            return 304
        return None

    @staticmethod
    def _range(request, etag: str, mtime: datetime.datetime, size: int):
        """(offset, count) of one satisfiable range, "unsatisfiable", or None for the whole file."""
        value = request.headers.get("Range")
        if value is None or request.method != "GET":
            return None
        if_range = request.headers.get("If-Range")
        if if_range is not None and not _if_range_matches(if_range.strip(), request, etag, mtime):
            return None
        m = _RANGE.fullmatch(value.replace(" ", ""))
        if m is None:
            return None  # several ranges or another unit: serve the whole file
        first, last = (_position(group) for group in m.groups())
        if first is None and last is None:
            return None
        if first is None:  # suffix: the last N bytes
            if last == 0 or size == 0:  # (RFC 9110 s14.1.2: none of an empty file)
                return "unsatisfiable"
            start = max(size - last, 0)
            return start, size - start
        end = min(last, size - 1) if last is not None else size - 1
        if first >= size or (last is not None and last < first):
            return "unsatisfiable"
        return first, end - first + 1


def _position(digits: str) -> int | None:
    """A range position: None when absent; a huge one becomes ``_BEYOND`` unconverted."""
    if not digits:
        return None
    return int(digits) if len(digits.lstrip("0")) <= _MAX_DIGITS else _BEYOND


def _if_range_matches(value: str, request, etag: str, mtime: datetime.datetime) -> bool:
    """RFC 9110 s13.1.5: an entity tag matches only strongly (a weak one never does);
    a date only when it is exactly the Last-Modified of the file."""
    if value.startswith(('"', "W/")):
        return value == etag
    return request.if_range == mtime


def _open(path: str):
    file = open(path, "rb")
    try:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(path)
    except BaseException:
        file.close()
        raise
    return file, st
