"""Dict-like state carried by an ``Application`` (per worker) and a ``Request`` (per
request, for middlewares), as in aiohttp: ``app["db"]``, ``request["user"]``."""

from collections.abc import MutableMapping


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
