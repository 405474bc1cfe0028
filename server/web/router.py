"""URL dispatch: (method, path) → handler and match_info.

    router.add_get("/users/{id}", handler)         # {id}: one path segment
    router.add_get(r"/files/{name:.+}", handler)   # {name:regex}
    router.resolve("GET", "/users/7") → MatchInfo({"id": "7"}, handler)

Paths are matched against the request path decoded except for ``%2F`` and
``%25``, so an encoded slash never splits a segment; values in ``match_info``
are fully decoded. No match gives a handler that raises ``HTTPNotFound``; a
path that matches with another method gives ``HTTPMethodNotAllowed`` with
``Allow``. Both run through the middlewares like any handler.
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote

from .exceptions import HTTPMethodNotAllowed, HTTPNotFound
from .static import StaticResource

METH_ANY = "*"
_ADDERS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}  # the methods with a router.add_<method>
_new_dict = dict.__new__
_VARIABLE = re.compile(r"(\{[_a-zA-Z][^{}]*(?:\{[^{}]*\}[^{}]*)*\})")  # one level of braces inside


@dataclass(frozen=True, slots=True)
class RouteDef:
    """A route declared apart from an app: ``app.add_routes([web.get("/", handler)])``."""

    method: str
    path: str
    handler: object
    kwargs: dict

    def register(self, router: "Router") -> list:
        """As aiohttp: through ``add_<method>`` where there is one, so ``route("GET", ...)``
        answers HEAD too, as ``add_get`` does."""
        if self.method in _ADDERS:
            add = getattr(router, f"add_{self.method.lower()}")
            return [add(self.path, self.handler, **self.kwargs)]
        return [router.add_route(self.method, self.path, self.handler, **self.kwargs)]


def route(method: str, path: str, handler, **kwargs) -> RouteDef:
    return RouteDef(method, path, handler, kwargs)


def head(path, handler, **kwargs):
    return route("HEAD", path, handler, **kwargs)


def get(path, handler, *, allow_head: bool = True, **kwargs):
    return route("GET", path, handler, allow_head=allow_head, **kwargs)


def post(path, handler, **kwargs):
    return route("POST", path, handler, **kwargs)


def put(path, handler, **kwargs):
    return route("PUT", path, handler, **kwargs)


def patch(path, handler, **kwargs):
    return route("PATCH", path, handler, **kwargs)


def delete(path, handler, **kwargs):
    return route("DELETE", path, handler, **kwargs)


def options(path, handler, **kwargs):
    return route("OPTIONS", path, handler, **kwargs)


def view(path, handler, **kwargs):
    return route(METH_ANY, path, handler, **kwargs)


class MatchInfo(dict):
    """The variable parts of the matched path, plus the handler the router chose."""

    __slots__ = ("handler", "route_path")  # no instance __dict__: one is made per request

    def __init__(self, values: dict, handler, route_path: str | None = None):
        super().__init__(values)
        self.handler = handler
        self.route_path = route_path

    @classmethod
    def _plain(cls, handler, route_path: str) -> "MatchInfo":
        """An empty MatchInfo (a path without variables), made without ``__init__``."""
        match_info = _new_dict(cls)
        match_info.handler = handler
        match_info.route_path = route_path
        return match_info

    def __repr__(self) -> str:
        return f"<MatchInfo {super().__repr__()}: {self.route_path}>"


class Resource:
    """One path pattern and the handlers of its methods."""

    def __init__(self, path: str, name: str | None = None):
        if not path.startswith("/"):
            raise ValueError(f"Route path should start with '/': {path!r}")
        self.path = path
        self.name = name
        self.handlers: dict[str, object] = {}
        self.index = 0  # position in the router: resources are tried in order
        has_variables = _VARIABLE.search(path) is not None
        self.pattern = _compile(path) if has_variables else None  # (checks the path, and says it has variables)
        self.segments = _segments(path) if has_variables else None  # matched by these when not None

    def match(self, safe_path: str) -> dict | None:
        if self.segments is not None:
            values = _match_segments(self.segments, safe_path)
        elif self.pattern is None:
            return {} if safe_path == self.path else None
        else:
            m = self.pattern.fullmatch(safe_path)
            values = m.groupdict() if m is not None else None
        if values is None:
            return None
        return {key: unquote(value) for key, value in values.items()}

    def handler_for(self, method: str):
        return self.handlers.get(method) or self.handlers.get(METH_ANY)

    def add(self, method: str, handler) -> None:
        if method in self.handlers:
            raise RuntimeError(f"Added route will never be executed, method {method} is already registered "
                               f"for {self.path}")
        self.handlers[method] = handler


def _compile(path: str) -> re.Pattern:
    pattern = ""
    for part in _VARIABLE.split(path):
        if _VARIABLE.fullmatch(part):
            name, _, expr = part[1:-1].partition(":")
            if not name.isidentifier():
                raise ValueError(f"Bad variable name {name!r} in {path!r}")
            pattern += f"(?P<{name}>{expr or '[^{}/]+'})"
        else:
            if "{" in part or "}" in part:
                raise ValueError(f"Bad pattern {path!r}")
            pattern += re.escape(part)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"Bad pattern {path!r}: {exc}") from None


def _segments(path: str) -> list | None:
    """The path's segments for a match in linear time: a literal segment as a string, one
    with variables as ``(names, literals)`` (``len(literals) == len(names) + 1``); None if a
    variable has an expression of its own (that one is the app's regex)."""
    segments = []
    for segment in path.split("/"):
        parts = _VARIABLE.split(segment)
        if len(parts) == 1:
            segments.append(segment)
            continue
        names = parts[1::2]
        if any(":" in name for name in names):
            return None
        names = [name[1:-1] for name in names]
        if not all(name.isidentifier() for name in names):
            return None  # (_compile says what is wrong)
        segments.append((names, parts[0::2]))
    return segments


def _match_segments(segments: list, path: str) -> dict | None:
    """``path`` against ``segments``, as the regex of the route would match it (each variable
    one or more characters other than ``/``, ``{`` and ``}``; the first takes the most)."""
    parts = path.split("/")
    if len(parts) != len(segments):
        return None
    values = {}
    for template, part in zip(segments, parts):
        if type(template) is str:
            if part != template:
                return None
        elif not _match_segment(template, part, values):
            return None
    return values


def _match_segment(template: tuple, part: str, values: dict) -> bool:
    """Right to left, each literal at its rightmost place leaving the variables after it a
    character at least: the placement of a greedy regex, in one pass over ``part``."""
    names, literals = template
    prefix, suffix = literals[0], literals[-1]
    if "{" in part or "}" in part or not part.startswith(prefix) or not part.endswith(suffix):
        return False
    start, end = len(prefix), len(part) - len(suffix)
    found = []
    for literal in reversed(literals[1:-1]):
        at = part.rfind(literal, start + 1, end - 1)
        if at < 0:
            return False
        found.append((at + len(literal), end))
        end = at
    if end <= start:
        return False
    found.append((start, end))
    for name, (begin, stop) in zip(names, reversed(found)):
        values[name] = part[begin:stop]
    return True


def safe_path(raw_path: str) -> str:
    """Decode a percent-encoded path, keeping ``%2F`` and ``%25`` encoded."""
    if "%" not in raw_path:
        return raw_path
    segments = raw_path.split("/")
    return "/".join(unquote(s).replace("%", "%25").replace("/", "%2F") for s in segments)


def _route_adder(method: str):
    """``Router.add_<method>(path, handler, **kwargs)``: ``add_route`` for one method."""

    def add(self, path, handler, **kwargs):
        return self.add_route(method, path, handler, **kwargs)

    add.__name__ = add.__qualname__ = "add_view" if method == METH_ANY else f"add_{method.lower()}"
    add.__doc__ = f"Route {'every method' if method == METH_ANY else method} of ``path`` to ``handler``."
    return add


class Router:
    def __init__(self):
        self._resources: list[Resource] = []
        self._plain: dict[str, Resource] = {}  # resources without variables, by path
        self._first_pattern = 1 << 62  # index of the first resource with variables
        self._frozen = False
        self._static: dict = {}  # once frozen: (method, path) -> (handler, route path), where no pattern comes first

    def freeze(self) -> None:
        if self._frozen:
            return
        self._frozen = True
        for path, resource in self._plain.items():
            if resource.index < self._first_pattern and "%" not in path:
                for method, handler in resource.handlers.items():
                    if method != METH_ANY:
                        self._static[(method, path)] = (handler, path)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def add_route(self, method: str, path: str, handler, *, name: str | None = None, allow_head: bool = False):
        if self._frozen:
            raise RuntimeError("Cannot add routes to a running application")
        if not callable(handler):
            raise TypeError(f"Handler {handler!r} is not callable")
        method = method.upper()
        resource = self._resource(path, name)
        resource.add(method, handler)
        if allow_head and method == "GET":
            resource.add("HEAD", handler)
        return resource

    def add_get(self, path, handler, *, allow_head: bool = True, **kwargs):
        return self.add_route("GET", path, handler, allow_head=allow_head, **kwargs)

    add_head = _route_adder("HEAD")
    add_post = _route_adder("POST")
    add_put = _route_adder("PUT")
    add_patch = _route_adder("PATCH")
    add_delete = _route_adder("DELETE")
    add_options = _route_adder("OPTIONS")
    add_view = _route_adder(METH_ANY)

    def add_static(self, prefix: str, path, *, name: str | None = None, **kwargs) -> StaticResource:
        """The files under the directory ``path`` at ``prefix``; see ``static.py``."""
        if self._frozen:
            raise RuntimeError("Cannot add routes to a running application")
        return self._append(StaticResource(prefix, path, name=name, **kwargs))

    def add_routes(self, routes) -> list:
        """Register route definitions (a ``RouteTableDef``, or ``web.get(...)``, ``web.static(...)``,
        ...); returns what each one added."""
        registered = []
        for definition in routes:
            registered.extend(definition.register(self))
        return registered

    def _resource(self, path: str, name: str | None) -> Resource:
        existing = self._plain.get(path)
        if existing is None:
            existing = next((r for r in self._resources if r.path == path and isinstance(r, Resource)
                             and r.pattern is not None), None)
        if existing is not None:
            return existing
        return self._append(Resource(path, name))

    def _append(self, resource):
        resource.index = len(self._resources)
        self._resources.append(resource)
        if resource.pattern is None:
            self._plain[resource.path] = resource
        elif self._first_pattern > resource.index:
            self._first_pattern = resource.index
        return resource

    def __iter__(self):
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)

    def resolve(self, method: str, raw_path: str) -> MatchInfo:
        """The handler and match_info for a request; 404/405 handlers when nothing fits.

        Resources are tried in the order they were added; a path without
        variables that no earlier pattern could shadow is found by a lookup.
        """
        static = self._static.get((method, raw_path))
        if static is not None:  # raw_path has no "%": it is its own safe_path
            return MatchInfo._plain(*static)
        path = safe_path(raw_path)
        plain = self._plain.get(path)
        if plain is not None and plain.index < self._first_pattern:
            handler = plain.handler_for(method)
            if handler is not None:
                return MatchInfo._plain(handler, plain.path)
        allowed: set[str] = set()
        for resource in self._resources:
            values = resource.match(path)
            if values is None:
                continue
            handler = resource.handler_for(method)
            if handler is not None:
                return MatchInfo(values, handler, resource.path)
            allowed.update(resource.handlers)
        if allowed:
            return MatchInfo({}, _method_not_allowed(method, allowed))
        return MatchInfo({}, _not_found)


async def _not_found(request):
    raise HTTPNotFound()


def _method_not_allowed(method: str, allowed: set[str]):
    async def method_not_allowed(request):
        raise HTTPMethodNotAllowed(method, allowed)
    return method_not_allowed
