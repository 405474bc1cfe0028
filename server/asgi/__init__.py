"""ASGI 3 (and ASGI 2) apps on the worker's event loop.

- ``detect``: is the loaded app ASGI, and in which call shape;
- ``scope``: the ``http`` and ``websocket`` scopes of a request head;
- ``body``: the request body as ``http.request`` messages, with flow control;
- ``messages``: checks of what the app sends;
- ``exchange``: one HTTP request/response cycle;
- ``websocket``: the ``websocket`` scope over ``server.websocket``;
- ``protocol``: the ``ServerHttpProtocol`` subclass;
- ``lifespan``: startup and shutdown once per worker;
- ``serving``: an app's ``ASGIConfig`` and ``Lifespan`` from plain values (the worker
  wires them: ``server.workers.apps``).
"""
