"""Accepting on gunicorn's listening sockets from the loop, in batches, with pausing.

    listening socket ──readable──► accept() until EAGAIN (at most ``backlog``)
        └─► loop.connect_accepted_socket(protocol_factory, conn[, ssl]) per connection

gunicorn hands the worker already-listening sockets (TCP, unix, systemd or
re-exec fds); they keep gunicorn's ``backlog``. The worker watches them with
``add_reader`` and accepts every waiting connection on each readiness event.
It does not let the loop's server accept: libuv (uvloop) accepts *one*
connection per loop iteration, so under load, when an iteration serves
hundreds of connections, new clients wait seconds in the accept queue.

Pausing (``worker_connections`` reached) stops watching: new clients wait in
the kernel's accept queue, as with gunicorn's own workers. Running out of file
descriptors pauses accepting for a second instead of spinning.
"""

import asyncio
import errno

RETRY_AFTER_RESOURCE_ERROR = 1.0  # seconds
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Listeners:
    def __init__(self, loop, gunicorn_sockets, protocol_factory, backlog: int, *, ssl=None,
                 ssl_handshake_timeout: float | None = None, log=None):
        self._loop = loop
        self._log = log  # failed connection set-ups (TLS handshakes) are logged at debug level
        self._tls = {} if ssl is None else {"ssl": ssl, "ssl_handshake_timeout": ssl_handshake_timeout or None}
        self._sockets = [s.sock if hasattr(s, "sock") else s for s in gunicorn_sockets]
        self._factory = protocol_factory
        self._batch = max(1, backlog)
        self._state = "stopped"  # stopped | serving | paused | closed
        self._watching = False
        self._retry: asyncio.TimerHandle | None = None
        self._setting_up: set = set()  # connections handed to the loop, not yet made

    async def start(self) -> None:
        self._state = "serving"
        self._watch()

    def pause(self) -> None:
        if self._state != "serving":
            return
        self._state = "paused"
        self._unwatch()

    def resume(self) -> None:
        if self._state != "paused":
            return
        self._state = "serving"
        if self._retry is None:
            self._watch()

    def close(self) -> None:
        """Stop accepting for good (graceful shutdown)."""
        self._state = "closed"
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._unwatch()

    # -- internals --------------------------------------------------------

    def _watch(self) -> None:
        if self._watching:
            return
        self._watching = True
        for sock in self._sockets:
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _unwatch(self) -> None:
        if not self._watching:
            return
        self._watching = False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())

    def _accept(self, sock) -> None:
        """Accept what waits (at most one backlog's worth); the loop does the rest per connection."""
        for _ in range(self._batch):
            if self._state != "serving":
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                self._loop.call_exception_handler({
                    "message": f"Accepting paused for {RETRY_AFTER_RESOURCE_ERROR:g}s: {exc}", "exception": exc})
                self._unwatch()
                self._retry = self._loop.call_later(RETRY_AFTER_RESOURCE_ERROR, self._retry_accepting)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn, **self._tls))
            self._setting_up.add(task)
            task.add_done_callback(self._made)

    def _retry_accepting(self) -> None:
        self._retry = None
        if self._state == "serving":
            self._watch()

    def _made(self, task: asyncio.Task) -> None:
        self._setting_up.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, OSError) and self._tls and self._log is not None:
            self._log.debug("Connection closed during set-up (TLS handshake): %r", exc)
        if exc is not None and not isinstance(exc, OSError):  # a reset or failed TLS handshake is routine
            self._loop.call_exception_handler({"message": "Error setting up a connection", "exception": exc})
