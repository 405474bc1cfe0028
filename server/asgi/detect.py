"""Is the loaded app an ASGI app, and in which of the two call shapes?

- ASGI 3: ``await app(scope, receive, send)``: a coroutine function, or an
  object whose ``__call__`` is one, that takes three positional arguments.
- ASGI 2 ("double callable"): ``instance = app(scope); await instance(receive, send)``:
  recognised here only for a class whose ``__init__`` takes one argument and
  whose ``__call__`` is a coroutine function taking two. A plain function
  returning a coroutine callable cannot be told apart from other callables
  without calling it: force the kind with ``ASYNCWORKER_APP_KIND=asgi``.

Anything synchronous (a WSGI function, a Flask or Django WSGI app, a PEP 3333
class) is never taken for ASGI, nor is a native ``server.web`` application.
"""

import inspect


def is_asgi_app(app) -> bool:
    if _is_native(app):
        return False
    return is_asgi3(app) or is_asgi2_class(app)


def is_asgi3(app) -> bool:
    if inspect.isclass(app):
        return False
    if inspect.iscoroutinefunction(app):
        return _takes_positional(app, 3)
    call = getattr(type(app), "__call__", None)
    if call is None or not inspect.iscoroutinefunction(call):
        return False
    return _takes_positional(app, 3)


def is_asgi2_class(app) -> bool:
    if not inspect.isclass(app):
        return False
    call = getattr(app, "__call__", None)
    if call is None or not inspect.iscoroutinefunction(call):
        return False
    # unbound: (self, receive, send); the class itself is called with (scope)
    return _takes_positional(call, 3) and _takes_positional(app, 1)


def as_asgi3(app) -> tuple[object, str]:
    """``(an ASGI 3 callable, the ASGI version to announce)``.

    What is not an ASGI 3 app is taken for an ASGI 2 double callable (the kind
    was detected or forced to be ASGI).
    """
    if is_asgi3(app):
        return app, "3.0"

    async def asgi2_adapter(scope, receive, send):
        instance = app(scope)
        await instance(receive, send)

    return asgi2_adapter, "2.0"


def _takes_positional(func, count: int) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _is_native(app) -> bool:
    try:
        from server.web.detect import is_native_app
    except ImportError:
        return False
    try:
        return bool(is_native_app(app))
    except Exception:
        return False
