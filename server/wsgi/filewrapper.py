"""``wsgi.file_wrapper`` (PEP 3333 "Optional Platform-Specific File Handling").

An app returns ``environ["wsgi.file_wrapper"](file, block_size)``. A regular
file goes by the connection's file sender (``server/protocol/files.py``):
``sendfile`` where the loop implements it (the asyncio loop does; uvloop does
not), else blocks read off the loop; anything else is iterated like any body,
block by block, on the app thread.
"""

import os
import stat


class FileWrapper:
    def __init__(self, filelike, blksize: int = 8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def sendfile_span(self) -> tuple[int, int] | None:
        """(offset, bytes to the end) when the file can go through sendfile, else None."""
        try:
            fd = self.filelike.fileno()
            st = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        try:
            offset = self.filelike.tell()
        except (AttributeError, OSError):
            return None
        return offset, max(0, st.st_size - offset)
