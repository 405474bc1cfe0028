"""The same multipart/form-data body through this server's parser and through others, as
comparable outcomes: ``("ok", ((name, filename, value), ...))`` or ``("error", what)``.

    ours(body, ctype)             server.web.multipart.read_form (what Request.post() runs)
    python_multipart(body, ctype)  python-multipart's MultipartParser (Starlette's parser), with
                                   its Content-Type / Content-Disposition parsing, as its FormParser
    werkzeug(body, ctype)          Werkzeug's form parser (Flask's), parts in name order

Names, filenames and values are bytes (ours are encoded back: fields are decoded as UTF-8).
python-multipart accepts a body only if it reaches the close delimiter, as ours does.
Used by tests/web/test_multipart_differential.py and fuzz_multipart.py.
"""

import asyncio
import io
import logging

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from werkzeug.exceptions import HTTPException as WerkzeugHTTPException
from werkzeug.formparser import parse_form_data

from server.web.exceptions import HTTPException
from server.web.multipart import MultipartReader, read_form

_LOOP = None
logging.getLogger("python_multipart").setLevel(logging.CRITICAL)  # it logs every malformed body


class _Bytes:
    """A body stream (``readany()``) handing out ``body`` in pieces of ``piece`` bytes."""

    def __init__(self, body: bytes, piece: int):
        self._body, self._piece, self._pos = body, max(piece, 1), 0

    async def readany(self) -> bytes:
        data = self._body[self._pos:self._pos + self._piece]
        self._pos += len(data)
        return data


async def _ours(body: bytes, ctype: str, piece: int, max_size: int) -> tuple:
    try:
        reader = MultipartReader({"Content-Type": ctype}, _Bytes(body, piece))
        form = await read_form(reader, max_size, None)
    except HTTPException as exc:
        return "error", exc.status
    out = []
    for name, value in form.items():
        if isinstance(value, str):
            out.append((name.encode(), None, value.encode()))
        else:
            out.append((name.encode(), value.filename.encode(), value.file.read()))
            value.file.close()
    return "ok", tuple(out)


def ours(body: bytes, ctype: str, piece: int = 1 << 16, max_size: int = 0) -> tuple:
    """Our outcome, the body read ``piece`` bytes at a time; an error is its HTTP status."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    return _LOOP.run_until_complete(_ours(body, ctype, piece, max_size))


def python_multipart(body: bytes, ctype: str) -> tuple:
    """python-multipart's outcome; an error is the exception's class name."""
    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        return "error", "no boundary"
    parts, current = [], {}

    def on_part_begin():
        current.clear()
        current.update(headers={}, data=[], field=b"", value=b"")

    def on_header_field(data, start, end):
        current["field"] += data[start:end]

    def on_header_value(data, start, end):
        current["value"] += data[start:end]

    def on_header_end():
        current["headers"][current["field"].lower()] = current["value"]
        current["field"], current["value"] = b"", b""

    def on_part_data(data, start, end):
        current["data"].append(data[start:end])

    def on_part_end():
        _, options = parse_options_header(current["headers"].get(b"content-disposition"))
        if options.get(b"name") is None:  # as python-multipart's FormParser
            raise MultipartParseError("no name")
        parts.append((options[b"name"], options.get(b"filename"), b"".join(current["data"])))

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end,
                 "on_part_data": on_part_data, "on_part_end": on_part_end}
    parser = MultipartParser(boundary, callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        return "error", type(exc).__name__
    if parser.state != MultipartState.END:
        return "error", "no close delimiter"
    return "ok", tuple(parts)


def werkzeug(body: bytes, ctype: str) -> tuple:
    """Werkzeug's outcome (fields, then files, each in name order: it keeps no order between them)."""
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": ctype, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "SERVER_NAME": "t", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    try:
        _, form, files = parse_form_data(environ, silent=False, max_form_memory_size=None)
    except (WerkzeugHTTPException, ValueError) as exc:
        return "error", type(exc).__name__
    out = [(_b(k), None, _b(v)) for k, v in form.items(multi=True)]
    out += [(_b(k), _b(f.filename), f.read()) for k, f in files.items(multi=True)]
    return "ok", tuple(sorted(out, key=lambda item: (item[1] is not None, item[0])))


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogateescape")


def same(a: tuple, b: tuple, ordered: bool = True) -> bool:
    """Both accepted the same parts (in order unless ``ordered`` is False), or both rejected."""
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return True
    if ordered:
        return a[1] == b[1]
    key = lambda item: (item[1] is not None, item[0])  # noqa: E731
    return sorted(a[1], key=key) == sorted(b[1], key=key)
