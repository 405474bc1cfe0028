"""What apps and the event loop report reaches gunicorn's error log (``--error-logfile``,
``--log-config``), never stderr past it."""

import pytest

from helpers import BOOT_LINE, Gunicorn, connect, read_response, wait_until

WSGI_MESSAGE = "a message from the app to wsgi.errors"
LOOP_ERROR = "ZeroDivisionError: a failing loop callback"
LOG_CONFIG = """
[loggers]
keys=root, gunicorn.error

[handlers]
keys=error_file

[formatters]
keys=plain

[logger_root]
level=INFO
handlers=error_file

[logger_gunicorn.error]
level=INFO
handlers=error_file
propagate=0
qualname=gunicorn.error

[handler_error_file]
class=FileHandler
formatter=plain
args=({path!r}, "a")

[formatter_plain]
format=%(asctime)s [%(process)d] [%(levelname)s] %(message)s
"""


class LoggingElsewhere(Gunicorn):
    """A gunicorn whose error log (and so its boot line) goes to ``error_log``."""

    def __init__(self, app: str, error_log, *args: str):
        super().__init__(app, *args)
        self.error_log = error_log

    def _booted(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {self.proc.returncode}")
        return (self.error_log.exists() and BOOT_LINE in self.error_log.read_text()
                and self._worker_serves())


def error_log_args(how: str, tmp_path):
    error_log = tmp_path / "error.log"
    if how == "error-logfile":
        return error_log, ["--error-logfile", str(error_log)]
    config = tmp_path / "logging.ini"
    config.write_text(LOG_CONFIG.format(path=str(error_log)))
    return error_log, ["--log-config", str(config)]


def get(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert read_response(sock).status == 200


@pytest.mark.parametrize("how", ["error-logfile", "log-config"])
@pytest.mark.parametrize("app, expected", [("errorlog_apps:wsgi_app", WSGI_MESSAGE),
                                           ("errorlog_apps:asgi_app", LOOP_ERROR)], ids=["wsgi.errors", "loop"])
def test_reports_go_to_the_error_log(how, app, expected, tmp_path):
    error_log, args = error_log_args(how, tmp_path)
    with LoggingElsewhere(app, error_log, *args) as srv:
        get(srv.port)
        wait_until(lambda: error_log.exists() and expected in error_log.read_text(), 5, what="the report")
        stderr = srv.log_text()
    assert expected not in stderr
