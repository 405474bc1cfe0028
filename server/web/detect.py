"""Is the loaded object a native app? ``is_native_app(obj) -> bool``.

Native means an ``Application`` instance, or a factory that returns one: a
plain function or coroutine function taking no arguments, whose return
annotation names ``Application`` (``def make() -> web.Application``), or that
is marked with ``@web.app_factory``. Anything else, WSGI and ASGI apps
included (they take 2 and 3 arguments, or are classes or instances), is not:
detection never calls the object.
"""

import inspect
import typing

from .app import Application

FACTORY_MARK = "__native_app_factory__"


def app_factory(func):
    """Mark a zero-argument function (sync or async) as returning an ``Application``."""
    setattr(func, FACTORY_MARK, True)
    return func


def is_native_app(obj) -> bool:
    if isinstance(obj, Application):
        return True
    if not (inspect.isfunction(obj) or inspect.ismethod(obj)):
        return False
    if not _takes_no_arguments(obj):
        return False
    return bool(getattr(obj, FACTORY_MARK, False)) or _annotated_as_app(obj)


def _takes_no_arguments(func) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values())


def _annotated_as_app(func) -> bool:
    try:
        annotation = typing.get_type_hints(func).get("return")
    except Exception:  # unresolvable string annotations: read them as text
        annotation = getattr(func, "__annotations__", {}).get("return")
    return _names_app(annotation)


def _names_app(annotation) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, str):
        name = annotation.strip().strip("'\"")
        return name == "Application" or name.endswith(".Application")
    if isinstance(annotation, type):
        return issubclass(annotation, Application)
    # Awaitable[Application], Coroutine[Any, Any, Application], Optional[...]
    return any(_names_app(arg) for arg in typing.get_args(annotation))
