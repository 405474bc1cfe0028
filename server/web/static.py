"""Static files: ``router.add_static(prefix, directory)``, as in aiohttp.

    GET /prefix/a/b.css ──► filename "a/b.css" (fully decoded)
        ──resolve (off the loop)──► 403  absolute name; a directory without show_index
                                    404  outside the directory (``..``, a symlink out
                                         unless follow_symlinks), NUL, backslash, missing
                                    index page (show_index) or FileResponse (Range,
                                    conditional requests)

The directory is resolved once, when the route is added. A name is joined to it
and resolved; what does not land inside it is not found. With
``follow_symlinks=True`` only the name's own ``..`` are checked, so a symlink
placed in the directory may point anywhere (aiohttp's meaning).
"""

import asyncio
import html
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from .exceptions import HTTPForbidden, HTTPNotFound
from .fileresponse import FileResponse
from .response import Response


@dataclass(frozen=True, slots=True)
class StaticDef:
    """A static route declared apart from an app: ``app.add_routes([web.static("/s", "dir")])``."""

    prefix: str
    path: object
    kwargs: dict

    def register(self, router) -> list:
        return [router.add_static(self.prefix, self.path, **self.kwargs)]


def static(prefix: str, path, **kwargs) -> StaticDef:
    return StaticDef(prefix, path, kwargs)


class StaticResource:
    """Every path under ``prefix``: the files of one directory, by GET and HEAD."""

    def __init__(self, prefix: str, directory, *, name: str | None = None, chunk_size: int = 256 * 1024,
                 show_index: bool = False, follow_symlinks: bool = False, append_version: bool = False):
        if not prefix.startswith("/"):
            raise ValueError(f"Static prefix should start with '/': {prefix!r}")
        self.prefix = prefix.rstrip("/")
        try:
            self.directory = Path(directory).expanduser().resolve(strict=True)
        except FileNotFoundError as exc:
            raise ValueError(f"No directory exists at {directory!r}") from exc
        if not self.directory.is_dir():
            raise ValueError(f"{directory!r} is not a directory")
        self.path = self.prefix or "/"
        self.name = name
        self.pattern = self.prefix + "/"  # not None: the router treats it as a pattern
        self.index = 0
        self.show_index = show_index
        self.follow_symlinks = follow_symlinks
        self.append_version = append_version  # kept for aiohttp's signature: there are no URLs to build
        self._chunk_size = chunk_size
        self.handlers = {"GET": self.handle, "HEAD": self.handle}

    def __repr__(self) -> str:
        return f"<StaticResource {self.prefix or '/'} -> {self.directory}>"

    def match(self, safe_path: str) -> dict | None:
        if not safe_path.startswith(self.pattern):
            return None
        return {"filename": unquote(safe_path[len(self.pattern):])}

    def handler_for(self, method: str):
        return self.handlers.get(method)

    async def handle(self, request):
        filename = request.match_info["filename"]
        loop = asyncio.get_running_loop()
        path, is_dir = await loop.run_in_executor(None, self.resolve, filename)
        if not is_dir:
            return FileResponse(path, chunk_size=self._chunk_size)
        if not self.show_index:
            raise HTTPForbidden()
        page = await loop.run_in_executor(None, self.index_page, path)
        return Response(text=page, content_type="text/html")

    def resolve(self, filename: str) -> tuple[Path, bool]:
        """The file or directory ``filename`` names inside the directory, and whether it is
        a directory; HTTPForbidden or HTTPNotFound otherwise. Blocking: run off the loop."""
        if "\x00" in filename or "\\" in filename:
            raise HTTPNotFound()
        if Path(filename).is_absolute():
            raise HTTPForbidden()
        joined = self.directory / filename
        try:
            if self.follow_symlinks:
                normalized = Path(os.path.normpath(joined))
                normalized.relative_to(self.directory)
                path = normalized.resolve()
            else:
                path = joined.resolve()
                path.relative_to(self.directory)
            if path.is_dir():
                return path, True
            if path.is_file():
                return path, False
        except (ValueError, OSError, RuntimeError):  # outside; a symlink loop; a name too long
            pass
        raise HTTPNotFound()

    def index_page(self, directory: Path) -> str:
        """An HTML list of the entries of ``directory`` (aiohttp's layout). Blocking."""
        relative = directory.relative_to(self.directory).as_posix()
        title = html.escape(f"Index of /{'' if relative == '.' else relative}")
        items = []
        for entry in sorted(directory.iterdir()):
            url = quote(f"{self.prefix}/{entry.relative_to(self.directory).as_posix()}")
            label = entry.name + ("/" if entry.is_dir() else "")
            items.append(f'<li><a href="{html.escape(url)}">{html.escape(label)}</a></li>')
        return (f"<html>\n<head>\n<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
                f"<ul>\n{chr(10).join(items)}\n</ul>\n</body>\n</html>")
