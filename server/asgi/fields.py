"""Header fields as ASGI has them: lower-cased request names, checked response pairs.

Both run for every request, so each has a compiled version (``_chead.c``, see
``server.protocol.compiled``); these Python versions are the reference it must match.
"""

from server.protocol.compiled import compiled


def lower_fields_py(raw: list) -> list:
    """The scope's ``headers``: the request's (name, value) bytes pairs, in order,
    duplicates kept, each name in lower case."""
    return [(name.lower(), value) for name, value in raw]


def bytes_pairs_py(headers) -> tuple | None:
    """``headers`` of an ``http.response.start`` message as a tuple of ``(name, value)``
    tuples, when it is a list or tuple of two-item lists or tuples of exactly bytes
    (what the head cache can key on); None for anything else, which the full checks
    then accept or refuse."""
    kind = type(headers)
    if kind is not list and kind is not tuple:
        return None
    pairs = []
    for item in headers:
        kind = type(item)
        if (kind is not tuple and kind is not list) or len(item) != 2:
            return None
        name, value = item
        if type(name) is not bytes or type(value) is not bytes:
            return None
        pairs.append(item if kind is tuple else (name, value))
    return tuple(pairs)


lower_fields = compiled("lower_fields") or lower_fields_py
bytes_pairs = compiled("bytes_pairs") or bytes_pairs_py
