"""The caps of form parsing, each crossed: the whole body (``client_max_size``), the number of
parts, files and fields of a multipart body, the fields of a urlencoded body, file data in
memory, and the length of a delimiter line. Past a cap: 413 (400 for a malformed line) and
no temporary file left open."""

import asyncio
import os
from pathlib import Path

import pytest

from server import web
from server.web.multipart import FORM_FILE_MEMORY, MAX_PART_HEAD, MultipartReader, read_form
from server.web.request import parse_urlencoded

CT = {"Content-Type": "multipart/form-data; boundary=B"}


class Body:
    """A body stream handing out ``data`` in pieces of 64 KiB."""

    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    async def readany(self) -> bytes:
        piece = self._data[self._pos:self._pos + 65536]
        self._pos += len(piece)
        return piece


def field(name: str, value: str = "") -> bytes:
    return f'--B\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def file_part(name: str, data: bytes = b"") -> bytes:
    return (f'--B\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"


def open_files_under(directory: Path) -> list[str]:
    """This process' open files inside ``directory`` (deleted temporary files included)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def form_of(body: bytes, tmp_dir=None, max_size: int = 0, **caps):
    async def main():
        return await read_form(MultipartReader(CT, Body(body)), max_size, tmp_dir and str(tmp_dir), **caps)
    return asyncio.run(main())


def test_3000_empty_file_parts_are_a_413_and_leave_no_file_open(tmp_path):
    body = b"".join(file_part(f"f{i}") for i in range(3000)) + b"--B--\r\n"
    with pytest.raises(web.HTTPRequestEntityTooLarge) as info:
        form_of(body, tmp_path)
    assert "Too many parts in the form (at most 1000)" in info.value.text
    assert open_files_under(tmp_path) == []


def test_1000_file_parts_are_read_and_small_ones_open_no_file(tmp_path):
    body = b"".join(file_part(f"f{i}", b"x" * 10) for i in range(1000)) + b"--B--\r\n"
    form = form_of(body, tmp_path)
    assert len(form) == 1000 and form["f999"].file.read() == b"x" * 10
    assert open_files_under(tmp_path) == []  # 10 KB of file data: all of it in memory
    for value in form.values():
        value.file.close()


def test_file_data_past_the_memory_budget_goes_to_temporary_files(tmp_path):
    big = b"y" * (FORM_FILE_MEMORY - 100)
    body = file_part("a", big) + file_part("b", b"z" * 200) + file_part("c", b"w" * 50) + b"--B--\r\n"
    form = form_of(body, tmp_path)
    assert [form[n].file.read() for n in "abc"] == [big, b"z" * 200, b"w" * 50]
    # a fits in memory, b does not (on disk), c fits in what is left.
    assert len(open_files_under(tmp_path)) == 1
    assert os.fstat(form["b"].file.fileno()).st_size == 200
    for value in form.values():
        value.file.close()
    assert open_files_under(tmp_path) == []


def test_past_the_file_cap_every_file_made_is_closed(tmp_path):
    data = b"d" * (FORM_FILE_MEMORY // 2)
    body = b"".join(file_part(f"f{i}", data) for i in range(6)) + b"--B--\r\n"
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        form_of(body, tmp_path, max_files=5)
    assert open_files_under(tmp_path) == []
    assert len(form_of(body, tmp_path, max_files=6)) == 6  # at the cap: read


def test_the_size_bound_counts_the_whole_body_not_only_part_data():
    """40,000 empty fields: 2 MB of delimiters and heads, no data at all."""
    body = b"".join(field("a") for _ in range(40_000)) + b"--B--\r\n"
    assert len(body) > 1.9 * 1024 * 1024
    with pytest.raises(web.HTTPRequestEntityTooLarge) as info:
        form_of(body, max_size=1024 * 1024, max_parts=0, max_fields=0)
    assert "Maximum request body size 1048576 exceeded" in info.value.text
    assert len(form_of(body, max_size=len(body), max_parts=0, max_fields=0).getall("a")) == 40_000


@pytest.mark.parametrize("cap,kind", [("max_parts", "parts"), ("max_fields", "fields")])
def test_part_and_field_caps(cap, kind):
    body = b"".join(field(f"n{i}", "v") for i in range(11)) + b"--B--\r\n"
    with pytest.raises(web.HTTPRequestEntityTooLarge) as info:
        form_of(body, **{cap: 10})
    assert f"Too many {kind} in the form (at most 10)" in info.value.text
    assert len(form_of(body, **{cap: 11})) == 11


def test_urlencoded_field_cap():
    assert len(parse_urlencoded("a=1&" * 999 + "b=2", "utf-8", 1000)) == 1000
    with pytest.raises(web.HTTPRequestEntityTooLarge) as info:
        parse_urlencoded("a&" * (512 * 1024), "utf-8", 1000)  # 1 MiB: 524,288 fields
    assert "Too many fields" in info.value.text
    assert len(parse_urlencoded("a&" * 2000, "utf-8", 0)) == 2000  # 0: no cap


def test_a_delimiter_line_past_the_head_bound_is_a_400():
    body = field("a", "v") + b"--B" + b" " * (MAX_PART_HEAD + 10) + b"\r\n" + field("b") + b"--B--"
    with pytest.raises(web.HTTPBadRequest):
        form_of(body)
    padded = field("a", "v") + b"--B" + b" " * 1000 + b"\r\n" + field("b", "w")[5:] + b"--B--"
    assert dict(form_of(padded)) == {"a": "v", "b": "w"}


def test_application_caps_are_parameters():
    app = web.Application(max_form_parts=5, max_form_files=2, max_form_fields=3)
    assert (app.max_form_parts, app.max_form_files, app.max_form_fields) == (5, 2, 3)
    default = web.Application()
    assert (default.max_form_parts, default.max_form_files, default.max_form_fields) == (1000, 1000, 1000)


@pytest.mark.parametrize("charset", ["punycode", "idna", "unicode_escape", "rot13", "no-such-charset"])
def test_a_field_in_a_codec_that_is_no_charset_is_a_400(charset):
    """punycode decodes in quadratic time (40 KB: over a second): a client may not pick it."""
    value = b"a" * 20_000 + b"-" + b"9" * 20_000
    body = (b'--B\r\nContent-Disposition: form-data; name="a"\r\n'
            b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n\r\n" + value + b"\r\n--B--\r\n")
    with pytest.raises(web.HTTPBadRequest):
        form_of(body)


def test_a_field_not_in_its_charset_is_a_400_and_other_charsets_decode():
    def body(charset: str, value: bytes) -> bytes:
        return (b'--B\r\nContent-Disposition: form-data; name="a"\r\nContent-Type: text/plain; charset='
                + charset.encode() + b"\r\n\r\n" + value + b"\r\n--B--\r\n")

    with pytest.raises(web.HTTPBadRequest):
        form_of(body("utf-8", b"\xff\xfe"))
    assert form_of(body("latin-1", b"caf\xe9"))["a"] == "café"
    assert form_of(body("shift_jis", "日本".encode("shift_jis")))["a"] == "日本"
