"""Which loaded objects are served as ASGI: real framework apps and plain callables."""

import functools

import pytest

from server.asgi.detect import as_asgi3, is_asgi_app
from server.workers.apps import app_kind


async def asgi3_function(scope, receive, send):
    pass


class ASGI3Object:
    async def __call__(self, scope, receive, send):
        pass


class ASGI2Class:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        pass


def wsgi_function(environ, start_response):
    return []


class WSGIClass:  # PEP 3333 allows a class: called with (environ, start_response), iterated
    def __init__(self, environ, start_response):
        self.environ = environ

    def __iter__(self):
        return iter([])


class WSGIObject:
    def __call__(self, environ, start_response):
        return []


async def async_two_args(request, extra):  # an async callable that is not ASGI
    pass


def asgi2_function(scope):  # cannot be told from other callables without calling it
    return ASGI2Class(scope)


def starlette_app():
    from starlette.applications import Starlette
    return Starlette()


def fastapi_app():
    from fastapi import FastAPI
    return FastAPI()


def django_asgi_app():
    import asgi_django
    return asgi_django.application


def django_wsgi_app():
    import django_app
    return django_app.application


def flask_app():
    import flask_app as module
    return module.app


@pytest.mark.parametrize("make", [
    lambda: asgi3_function, lambda: ASGI3Object(), lambda: ASGI2Class,
    lambda: functools.partial(asgi3_function), starlette_app, fastapi_app, django_asgi_app,
], ids=["function", "object", "asgi2-class", "partial", "starlette", "fastapi", "django-asgi"])
def test_asgi_apps_are_detected(make):
    app = make()
    assert is_asgi_app(app)
    assert app_kind(app) == "asgi"


@pytest.mark.parametrize("make", [
    lambda: wsgi_function, lambda: WSGIClass, lambda: WSGIObject(), lambda: async_two_args,
    lambda: asgi2_function, flask_app, django_wsgi_app,
], ids=["wsgi-function", "wsgi-class", "wsgi-object", "async-two-args", "asgi2-function",
        "flask", "django-wsgi"])
def test_other_callables_are_not_asgi(make):
    app = make()
    assert not is_asgi_app(app)
    assert app_kind(app) == "wsgi"


def test_native_application_is_not_asgi():
    from server.web import Application
    app = Application()
    assert not is_asgi_app(app)
    assert app_kind(app) == "native"


def test_as_asgi3_wraps_asgi2_apps():
    app, version = as_asgi3(asgi3_function)
    assert (app, version) == (asgi3_function, "3.0")
    wrapped, version = as_asgi3(asgi2_function)  # forced with ASYNCWORKER_APP_KIND=asgi
    assert version == "2.0" and wrapped is not asgi2_function
