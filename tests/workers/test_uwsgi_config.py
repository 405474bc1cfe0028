"""gunicorn's ``protocol`` and ``uwsgi_allow_ips`` read from a real gunicorn ``Config``."""

import pytest
from gunicorn.config import Config

from server.workers.config import uwsgi_from_gunicorn, worker_config


def gunicorn_config(**settings) -> Config:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def test_http_by_default_and_for_any_other_protocol_as_in_gunicorn():
    assert worker_config(Config(), {}).uwsgi_allow_ips is None
    assert uwsgi_from_gunicorn(gunicorn_config(protocol="http")) is None


def test_uwsgi_with_gunicorn_s_default_allow_list():
    assert worker_config(gunicorn_config(protocol="uwsgi"), {}).uwsgi_allow_ips == ("127.0.0.1", "::1")


def test_uwsgi_allow_ips_as_set():
    cfg = gunicorn_config(protocol="uwsgi", uwsgi_allow_ips="10.0.0.0/8, 192.0.2.7")
    assert uwsgi_from_gunicorn(cfg) == ("10.0.0.0/8", "192.0.2.7")
    assert uwsgi_from_gunicorn(gunicorn_config(protocol="uwsgi", uwsgi_allow_ips="*")) == ("*",)


@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
def test_uwsgi_with_the_proxy_protocol_is_refused(mode):
    with pytest.raises(ValueError, match="protocol = uwsgi cannot be used with proxy_protocol"):
        worker_config(gunicorn_config(protocol="uwsgi", proxy_protocol=mode), {})


def test_uwsgi_with_tls_is_allowed_as_in_gunicorn():
    cfg = gunicorn_config(protocol="uwsgi", certfile="cert.pem", keyfile="key.pem")
    assert worker_config(cfg, {}).uwsgi_allow_ips == ("127.0.0.1", "::1")
