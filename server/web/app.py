"""Application: routes, middlewares, per-worker hooks and shared state.

    request ──► router.resolve ──► match_info.handler
                                     wrapped by middlewares (first in the list = outermost)
            ◄── StreamResponse ◄────┘

``on_startup`` callbacks run once per worker before it accepts connections, then
the first half of each ``cleanup_ctx`` generator; on stop, ``on_shutdown``, the
second half of the ``cleanup_ctx`` generators (in reverse), then ``on_cleanup``.
Every callback gets the app. The app is a mapping for state shared by handlers
(``app["db"] = ...``); routes and middlewares are frozen once it serves.
"""

import functools
import inspect

from .multipart import MAX_FORM_FIELDS, MAX_FORM_FILES, MAX_FORM_PARTS
from .router import Router
from .state import StateMapping

DEFAULT_CLIENT_MAX_SIZE = 1024 ** 2


def middleware(func):
    """Mark ``async def mw(request, handler)`` as a middleware (optional, as in aiohttp)."""
    func.__middleware_version__ = 1
    return func


class Signal(list):
    """A list of async callbacks, frozen when the app starts serving."""

    def __init__(self, owner: "Application"):
        super().__init__()
        self._owner = owner

    def _check(self) -> None:
        if self._owner.frozen:
            raise RuntimeError("Cannot modify the callbacks of a running application")

    def append(self, callback) -> None:
        self._check()
        super().append(callback)

    def insert(self, index, callback) -> None:
        self._check()
        super().insert(index, callback)

    async def send(self, *args) -> None:
        for callback in self:
            await callback(*args)


class Application(StateMapping):
    def __init__(self, *, middlewares=(), client_max_size: int = DEFAULT_CLIENT_MAX_SIZE, debug: bool = False,
                 max_form_parts: int = MAX_FORM_PARTS, max_form_files: int = MAX_FORM_FILES,
                 max_form_fields: int = MAX_FORM_FIELDS):
        """``client_max_size`` bounds a body read whole (``read()``, ``post()``: 413 past it);
        the ``max_form_*`` caps bound what ``post()`` takes (0: no cap)."""
        self.router = Router()
        self._middlewares = list(middlewares)
        self._client_max_size = client_max_size
        self.max_form_parts = max_form_parts
        self.max_form_files = max_form_files
        self.max_form_fields = max_form_fields
        self.debug = debug
        self._state: dict = {}
        self._frozen = False
        self._chains: dict = {}
        self._cleanup_pending: list = []
        self.on_startup = Signal(self)
        self.on_shutdown = Signal(self)
        self.on_cleanup = Signal(self)
        self.on_response_prepare = Signal(self)
        self.cleanup_ctx = Signal(self)

    def __repr__(self) -> str:
        return f"<Application {len(self.router)} resources>"

    def __call__(self) -> "Application":
        """gunicorn loads only callables; calling the app gives the app itself."""
        return self


    # -- configuration --------------------------------------------------------------

    @property
    def middlewares(self) -> list:
        return self._middlewares

    @property
    def client_max_size(self) -> int:
        return self._client_max_size

    @property
    def frozen(self) -> bool:
        return self._frozen

    def add_routes(self, routes) -> list:
        return self.router.add_routes(routes)

    def freeze(self) -> None:
        if self._frozen:
            return
        for mw in self._middlewares:
            if not callable(mw):
                raise TypeError(f"Middleware {mw!r} is not callable")
        self._frozen = True
        self.router.freeze()

    # -- lifecycle --------------------------------------------------------------------

    async def startup(self) -> None:
        self.freeze()
        await self.on_startup.send(self)
        for factory in self.cleanup_ctx:
            generator = factory(self)
            if not inspect.isasyncgen(generator):
                raise TypeError(f"cleanup_ctx item {factory!r} must be an async generator function")
            await generator.__anext__()
            self._cleanup_pending.append(generator)

    async def shutdown(self) -> None:
        await self.on_shutdown.send(self)

    async def cleanup(self) -> None:
        """``cleanup_ctx`` second halves (reverse order), then ``on_cleanup``; every one runs."""
        errors = []
        while self._cleanup_pending:
            generator = self._cleanup_pending.pop()
            try:
                await generator.__anext__()
            except StopAsyncIteration:
                continue
            except Exception as exc:
                errors.append(exc)
                continue
            errors.append(RuntimeError(f"{generator!r} has more than one 'yield'"))
        for callback in self.on_cleanup:
            try:
                await callback(self)
            except Exception as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("Errors while cleaning up the application", errors)

    # -- requests -------------------------------------------------------------------------

    async def handle(self, request):
        """Route ``request`` and run its handler through the middlewares."""
        match_info = self.router.resolve(request.method, request.head.path)
        request.match_info = match_info
        if not self._middlewares:
            return await match_info.handler(request)
        return await self._chain(match_info.handler, match_info.route_path is not None)(request)

    def _chain(self, handler, cacheable: bool):
        """The handler wrapped by the middlewares; built once per route handler."""
        chain = self._chains.get(handler)
        if chain is None:
            chain = handler
            for mw in reversed(self._middlewares):
                chain = functools.partial(mw, handler=chain)
            if self._frozen and cacheable:
                self._chains[handler] = chain
        return chain
