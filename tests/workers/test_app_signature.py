"""Which loaded objects the worker refuses at boot: those no app kind can call."""

import functools

import pytest
from gunicorn.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.glogging import Logger

from server.workers.apps import app_kind, refuse_unfit_wsgi, wsgi_signature_problem


def wsgi(environ, start_response):
    return []


def no_arguments():
    return []


def one_argument(environ):
    return []


def three_arguments(environ, start_response, extra):
    return []


def any_arguments(*args, **kwargs):
    return []


class CallableApp:
    def __call__(self, environ, start_response):
        return []


class Pep3333Class:
    """PEP 3333's class app: calling the class is calling the app."""

    def __init__(self, environ, start_response):
        self.body = []

    def __iter__(self):
        return iter(self.body)


class OneArgumentCall:
    def __call__(self, environ):
        return []


@pytest.mark.parametrize("app", [
    wsgi, any_arguments, CallableApp(), Pep3333Class, functools.partial(three_arguments, extra=1),
    functools.partial(wsgi), CallableApp().__call__, max,  # max: a builtin whose signature cannot be read
])
def test_what_could_be_a_wsgi_app_is_served(app):
    assert wsgi_signature_problem(app) is None


@pytest.mark.parametrize("app, problem", [
    (no_arguments, "it takes (), not (environ, start_response)"),
    (one_argument, "it takes (environ), not (environ, start_response)"),
    (three_arguments, "it takes (environ, start_response, extra), not (environ, start_response)"),
    (OneArgumentCall(), "it takes (environ), not (environ, start_response)"),
    (functools.partial(wsgi, {}), "it takes (start_response), not (environ, start_response)"),
])
def test_what_no_kind_can_call_is_named(app, problem):
    assert app_kind(app) == "wsgi"  # detection falls back to WSGI for anything callable
    assert wsgi_signature_problem(app) == problem


def test_an_unfit_app_stops_the_worker_with_gunicorns_boot_error(capfd):
    with pytest.raises(SystemExit) as exit_:
        refuse_unfit_wsgi(Logger(Config()), one_argument)
    assert exit_.value.code == Arbiter.WORKER_BOOT_ERROR
    err = capfd.readouterr().err
    assert "[ERROR] The app one_argument fits no app kind, stopping the worker: it takes (environ), " in err
    assert "ASYNCWORKER_APP_KIND forces a kind" in err
