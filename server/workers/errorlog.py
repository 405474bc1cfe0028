"""What apps and the event loop report goes to gunicorn's error log, as with gunicorn's own workers.

    app ──environ["wsgi.errors"].write()──► ErrorLogStream ──► the streams of the
                                              "gunicorn.error" logger's handlers
    loop ──an exception no task retrieved──► loop_exception_handler ──► log.error (formatted)

gunicorn's workers hand a WSGI app its error log as ``wsgi.errors`` (its
``WSGIErrorsWrapper``: raw writes to the streams of the error log's handlers), so
``--error-logfile`` and ``--log-config`` decide where an app's messages go. Here the
streams are looked up at each write, so a log file reopened on USR1 is followed.
asyncio's own reports (an exception in a callback, "Accepting paused ... Too many
open files") go through gunicorn's logger too, instead of asyncio's default
handler, which writes to stderr past it.
"""

import logging
import sys

ERROR_LOGGER = "gunicorn.error"


class ErrorLogStream:
    """A file-like ``wsgi.errors`` writing to the error log's streams (stderr without one)."""

    def write(self, data: str) -> None:
        for stream in _error_log_streams():
            try:
                stream.write(data)
            except UnicodeError:
                stream.write(data.encode("ascii", "backslashreplace").decode("ascii"))  # (a stream
                # that cannot take the text as it is gets it escaped rather than nothing)
            stream.flush()

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        for stream in _error_log_streams():
            stream.flush()


def _error_log_streams() -> list:
    streams = [h.stream for h in logging.getLogger(ERROR_LOGGER).handlers if getattr(h, "stream", None)]
    return streams or [sys.stderr]


def route_loop_errors(loop, log) -> None:
    """Report what asyncio would print to stderr through ``log`` (gunicorn's logger)."""

    def report(loop, context: dict) -> None:
        exc = context.get("exception")
        message = context.get("message") or "Unhandled error in the event loop"
        details = ", ".join(f"{key}={value!r}" for key, value in context.items()
                            if key not in ("message", "exception"))
        text = f"{message} ({details})" if details else message
        if exc is not None:
            log.error(text, exc_info=(type(exc), exc, exc.__traceback__))
        else:
            log.error(text)

    loop.set_exception_handler(report)
