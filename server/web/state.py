"""Dict-like state carried by an ``Application`` (per worker) and a ``Request`` (per
request, for middlewares), as in aiohttp: ``app["db"]``, ``request["user"]``.

``AppKey`` names a value with its type, for type checkers: ``DB = web.AppKey("DB", Database)``,
``app[DB] = db``, ``request.app[DB]`` is then a ``Database``. Keys are compared by
identity, so two modules' ``AppKey("db")`` never collide.
"""

import sys
from collections.abc import MutableMapping
from typing import Generic, TypeVar, get_args

T = TypeVar("T")


class AppKey(Generic[T]):
    """A typed key of an app's state: ``AppKey("name", type)`` or ``AppKey[type]("name")``."""

    __slots__ = ("_name", "_t", "__orig_class__")

    def __init__(self, name: str, t: type[T] | None = None):
        self._name = f"{_caller_module()}.{name}"
        self._t = t

    def __lt__(self, other) -> bool:
        """Sorts among AppKeys by name, before keys of other types (as aiohttp)."""
        if isinstance(other, AppKey):
            return self._name < other._name
        return True

    def __repr__(self) -> str:
        t = self._t
        if t is None:
            args = get_args(getattr(self, "__orig_class__", None))
            t = args[0] if args else None
        if t is None:
            t_repr = "<<Unknown>>"
        elif isinstance(t, type):
            t_repr = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
        else:
            t_repr = repr(t)
        return f"<AppKey({self._name}, type={t_repr})>"


def _caller_module() -> str:
    """The module whose top level makes the key (keys are made at import time)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            return frame.f_globals.get("__name__", "__main__")
        frame = frame.f_back
    return "__main__"


class StateMapping(MutableMapping):
    """A mutable mapping over ``self._state``, compared and hashed by identity."""

    __slots__ = ()

    def __getitem__(self, key):
        return self._state[key]

    def __setitem__(self, key, value):
        self._state[key] = value

    def __delitem__(self, key):
        del self._state[key]

    def __iter__(self):
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    __hash__ = object.__hash__
    __eq__ = object.__eq__
