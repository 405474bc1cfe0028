"""The worker's own settings, read from ASYNCWORKER_* environment variables."""

import pytest

from server.workers.settings import WorkerSettings


def test_defaults_without_environment():
    assert WorkerSettings.from_env({}) == WorkerSettings()


def test_every_kind_of_value_is_converted():
    settings = WorkerSettings.from_env({
        "ASYNCWORKER_READPAYLOAD": "off",
        "ASYNCWORKER_SPOOL_THRESHOLD": "4096",
        "ASYNCWORKER_MAX_BODY_SIZE": "10",
        "ASYNCWORKER_HEADER_TIMEOUT": "1.5",
        "ASYNCWORKER_BODY_TIMEOUT": "2",
        "ASYNCWORKER_DEBUG": "yes",
        "ASYNCWORKER_SERVER_HEADER": "",
        "ASYNCWORKER_ALLOWED_METHODS": "get, post",
        "ASYNCWORKER_LOOP": "asyncio",
        "ASYNCWORKER_TCP_KEEPALIVE": "0",
    })
    assert settings == WorkerSettings(
        readpayload=False, spool_threshold=4096, max_body_size=10, header_timeout=1.5,
        body_timeout=2.0, debug=True, server_header="", allowed_methods=frozenset({"GET", "POST"}),
        loop="asyncio", tcp_keepalive=False)
    assert isinstance(settings.header_timeout, float) and isinstance(settings.spool_threshold, int)


@pytest.mark.parametrize("name, value", [
    ("ASYNCWORKER_HEADER_TIMEOUT", "soon"),
    ("ASYNCWORKER_SPOOL_THRESHOLD", "-1"),
    ("ASYNCWORKER_DEBUG", "maybe"),
    ("ASYNCWORKER_LOOP", "trio"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        WorkerSettings.from_env({name: value})
