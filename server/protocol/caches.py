"""Caches of work done once per distinct value (header lines, environ keys, heads).

Their keys come from clients and apps, so there is no bound on how many distinct
ones arrive: a cache is emptied when it is full rather than allowed to grow.
Emptying costs one miss per value still in use; the common values come back at once.
"""


def remember(cache: dict, key, value, size: int):
    """Store ``value`` under ``key`` in ``cache``, emptying it first if it holds ``size`` entries."""
    if len(cache) >= size:
        cache.clear()
    cache[key] = value
    return value
