"""``wsgi.file_wrapper`` (PEP 3333 "Optional Platform-Specific File Handling").

An app returns ``environ["wsgi.file_wrapper"](file, block_size)``. A regular
file goes by the connection's file sender (``server/protocol/files.py``):
``sendfile`` where the loop implements it (the asyncio loop does; uvloop does
not), else blocks read off the loop. The loop sends its own copy of the file
(``own_copy``) while the app thread returns at once: a slow client holds a
descriptor and a connection, never an app thread. Anything else is iterated like
any body, block by block, on the app thread.
"""

import os
import stat

from server.protocol.files import FileTooShort


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


def own_copy(filelike):
    """A file object of the loop's own on the same open file (``os.dup``): it outlives the
    app's ``close()`` of the wrapper. None when it cannot be made (the thread then iterates)."""
    try:
        return os.fdopen(os.dup(filelike.fileno()), "rb", buffering=0)
    except (AttributeError, OSError, ValueError):
        return None


class LoopFileSend:
    """A file body sent by the loop while the app thread returns at once.

    The response ends when both are done: the file sent (by the channel's file sender)
    and the app's iterable closed (``produced()``, called with the thread's last hand-over),
    so the next request on the connection finds the app cleaned up. The loop's copy of the
    file is closed when its send ends, however it ends.
    """

    __slots__ = ("_channel", "_log", "_what", "task", "_produced", "_outcome")

    def __init__(self, channel, log, what: str):
        self._channel = channel
        self._log = log
        self._what = what  # "GET /path", for the log
        self.task = None
        self._produced = False
        self._outcome = None  # the task's exception, or True once the file is sent

    def start(self, file, offset: int, count: int) -> None:
        """Loop side, once the head is written."""
        channel = self._channel
        if channel.transport is None:
            file.close()
            return
        self.task = channel.loop.create_task(channel.send_file(file, offset, count))
        self.task.add_done_callback(lambda task: self._sent(task, file))

    def produced(self) -> None:
        """Loop side: the app is done and its iterable closed."""
        self._produced = True
        self._maybe_end()

    def _sent(self, task, file) -> None:
        file.close()
        if task.cancelled():
            self._outcome = ConnectionResetError("Client disconnected")
        else:
            self._outcome = task.exception() or True
        self._maybe_end()

    def _maybe_end(self) -> None:
        outcome, channel = self._outcome, self._channel
        if outcome is None or not self._produced or channel.transport is None:
            return
        if outcome is True:
            channel.end_response()
            return
        if isinstance(outcome, ConnectionError):
            self._log.debug("Client disconnected during the file response to %s", self._what)
        elif isinstance(outcome, FileTooShort):
            self._log.warning("Response to %s cut: %s", self._what, outcome)
        else:
            self._log.error("Error sending the file response to %s: %r", self._what, outcome)
        channel.abort_response()
