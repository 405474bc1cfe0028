"""Serving gunicorn's listening sockets on the loop, with accepting that can pause.

gunicorn hands the worker already-listening sockets (TCP, unix, systemd or
re-exec fds). Each is served by an asyncio ``Server`` created on a *duplicate*
of its fd with gunicorn's ``backlog`` (asyncio would otherwise re-listen with
100). Pausing (``worker_connections`` reached) closes those servers, which
closes only the duplicates: the socket keeps listening and new clients wait in
the kernel's accept queue, as with gunicorn's own workers; resuming serves
fresh duplicates.
"""

import asyncio


class Listeners:
    def __init__(self, loop, gunicorn_sockets, protocol_factory, backlog: int):
        self._loop = loop
        self._sockets = [s.sock if hasattr(s, "sock") else s for s in gunicorn_sockets]
        self._factory = protocol_factory
        self._backlog = backlog
        self._servers: list = []
        self._state = "stopped"  # stopped | serving | paused | closed
        self._resuming: asyncio.Task | None = None

    async def start(self) -> None:
        self._state = "serving"
        for sock in self._sockets:
            dup = sock.dup()
            dup.setblocking(False)
            server = await self._loop.create_server(self._factory, sock=dup, backlog=self._backlog)
            self._servers.append(server)

    def pause(self) -> None:
        if self._state != "serving":
            return
        self._state = "paused"
        self._close_servers()

    def resume(self) -> None:
        if self._state != "paused" or self._resuming is not None:
            return
        self._resuming = self._loop.create_task(self._resume())

    async def _resume(self) -> None:
        try:
            if self._state == "paused":
                await self.start()
        finally:
            self._resuming = None

    def close(self) -> None:
        """Stop accepting for good (graceful shutdown)."""
        self._state = "closed"
        if self._resuming is not None:
            self._resuming.cancel()
        self._close_servers()

    def _close_servers(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
