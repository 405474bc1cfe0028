"""wsgi.errors writes to the streams of gunicorn's error log."""

import io
import logging

import pytest

from server.workers.errorlog import ERROR_LOGGER, ErrorLogStream


@pytest.fixture
def ascii_error_log():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(ERROR_LOGGER)
    saved, logger.handlers = logger.handlers, [handler]  # (other tests may leave theirs)
    yield stream
    logger.handlers = saved


def test_text_an_error_log_cannot_encode_is_written_escaped(ascii_error_log):
    ErrorLogStream().write("caf\u00e9 \u2603\n")
    ascii_error_log.flush()
    assert ascii_error_log.buffer.getvalue() == b"caf\\xe9 \\u2603\n"
