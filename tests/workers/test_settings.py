"""The worker's own settings, read from ASYNCWORKER_* environment variables."""

import pytest

from server.workers.settings import ConfigError, WorkerSettings, known_variables, unknown_variables


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


@pytest.mark.parametrize("name, value, expected", [
    ("ASYNCWORKER_LOOP", "uvlop", "one of auto, uvloop, asyncio"),
    ("ASYNCWORKER_LIFESPAN", "maybe", "one of auto, on, off"),
    ("ASYNCWORKER_DEBUG", "maybe", "1 or 0 (or true/false, yes/no, on/off)"),
    ("ASYNCWORKER_MAX_BODY_SIZE", "1.5", "a whole number >= 0"),
    ("ASYNCWORKER_HEADER_TIMEOUT", "-1", "a number of seconds >= 0"),
])
def test_bad_values_say_what_the_variable_takes(name, value, expected):
    with pytest.raises(ConfigError) as error:
        WorkerSettings.from_env({name: value})
    assert str(error.value) == f"Invalid value for {name}: {value!r} (expected {expected})"


def test_defaults_given_by_gunicorn_yield_to_a_variable_that_is_set():
    assert WorkerSettings.from_env({}, loop="asyncio").loop == "asyncio"
    assert WorkerSettings.from_env({"ASYNCWORKER_LOOP": "uvloop"}, loop="asyncio").loop == "uvloop"


def test_a_misspelled_variable_is_named_with_the_closest_known_one():
    environ = {"ASYNCWORKER_HEADR_TIMEOUT": "5", "ASYNCWORKER_DEBUG": "1", "HOME": "/"}
    assert unknown_variables(environ) == [
        "ASYNCWORKER_HEADR_TIMEOUT is not a setting of this worker, ignored: "
        "did you mean ASYNCWORKER_HEADER_TIMEOUT?"]


def test_an_unknown_variable_far_from_any_lists_the_known_ones():
    [warning] = unknown_variables({"ASYNCWORKER_XYZ": "1"})
    assert warning.startswith("ASYNCWORKER_XYZ is not a setting of this worker, ignored: known ones: ")
    assert all(name in warning for name in known_variables())


def test_a_bad_minimum_rate_says_it_takes_bytes_per_second():
    with pytest.raises(ConfigError, match=r"ASYNCWORKER_MIN_REQUEST_RATE: 'fast' \(expected a number of bytes per second >= 0\)"):
        WorkerSettings.from_env({"ASYNCWORKER_MIN_REQUEST_RATE": "fast"})
    assert WorkerSettings.from_env({"ASYNCWORKER_MIN_RESPONSE_RATE": "0"}).min_response_rate == 0.0
