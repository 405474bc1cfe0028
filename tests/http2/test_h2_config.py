"""gunicorn's HTTP/2 settings as the worker reads them, and a clear refusal without h2."""

import sys

import pytest
from gunicorn.config import Config

from server.http2.config import H2Settings, header_list_size
from server.protocol.limits import Limits
from server.workers.config import worker_config
from server.workers.settings import ConfigError


def gunicorn_config(**settings) -> Config:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def test_http2_is_off_by_default():
    assert worker_config(Config(), {}).http2 is None


def test_gunicorn_http2_settings_are_read():
    pytest.importorskip("h2")
    cfg = gunicorn_config(http_protocols="h2,h1", http2_cleartext="prior-knowledge", http2_max_concurrent_streams=7,
                          http2_initial_window_size=100000, http2_max_frame_size=32768,
                          http2_max_header_list_size=20000)
    assert worker_config(cfg, {}).http2 == H2Settings(prior_knowledge=True, max_concurrent_streams=7,
                                                      initial_window_size=100000, max_frame_size=32768,
                                                      max_header_list_size=20000)
    assert worker_config(gunicorn_config(http_protocols="h2"), {}).http2.prior_knowledge is False
    both = worker_config(gunicorn_config(http_protocols="h2", http2_cleartext="both"), {}).http2
    assert (both.prior_knowledge, both.upgrade) == (True, True)
    upgrade = worker_config(gunicorn_config(http_protocols="h2", http2_cleartext="upgrade"), {}).http2
    assert (upgrade.prior_knowledge, upgrade.upgrade) == (False, True)


def test_asyncworker_http2_turns_it_on():
    pytest.importorskip("h2")
    assert worker_config(Config(), {"ASYNCWORKER_HTTP2": "1"}).http2 is not None


def test_enabled_without_the_h2_package_refuses_to_start(monkeypatch):
    for name in [n for n in sys.modules if n == "h2" or n.startswith("h2.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "h2", None)  # import h2 now raises ImportError
    with pytest.raises(ConfigError, match="h2 package is not installed"):
        worker_config(Config(), {"ASYNCWORKER_HTTP2": "1"})


def test_header_list_bound_follows_limit_request_fields():
    limits = Limits(fields=10, field_size=100)
    assert header_list_size(H2Settings(), limits) == 14 * 132
    assert header_list_size(H2Settings(max_header_list_size=1000), limits) == 1000
    assert header_list_size(H2Settings(max_header_list_size=0), Limits()) == 104 * (8190 + 32)
