"""The ASGI lifespan protocol, once per worker: startup before serving, shutdown after.

    worker ──startup()──► lifespan.startup ──► app ──► lifespan.startup.complete | .failed
    worker ──shutdown()─► lifespan.shutdown ─► app ──► lifespan.shutdown.complete | .failed

The app runs in one task for the worker's life, with ``scope["state"]``: the
dict every request scope gets a copy of. ``ASYNCWORKER_LIFESPAN`` says how
much the app must take part:

- ``auto`` (default): an app that raises before answering ``lifespan.startup``
  does not support lifespan; the worker serves it without;
- ``on``: that is an error as well;
- ``off``: no lifespan messages are sent.

A startup that fails (``lifespan.startup.failed``, or an error with ``on``)
raises ``LifespanFailure``; the worker then exits with gunicorn's boot-error
status so the arbiter halts instead of starting the worker again and again.
"""

import asyncio

from .messages import message_type

STARTUP, SHUTDOWN = "startup", "shutdown"


class LifespanFailure(Exception):
    """The app's lifespan startup failed; the message says why."""


class Lifespan:
    def __init__(self, app, mode: str, log, state: dict, asgi_version: str = "3.0"):
        self.app = app
        self.mode = mode
        self.log = log
        self.state = state
        self.asgi_version = asgi_version
        self._to_app: asyncio.Queue = asyncio.Queue()
        self._answers: asyncio.Queue = asyncio.Queue()  # (phase, ok, message) or None when the app ended
        self._task: asyncio.Task | None = None
        self._supported = mode != "off"
        self._phase: str | None = None  # the phase waiting for an answer

    async def startup(self) -> None:
        if not self._supported:
            return
        scope = {"type": "lifespan", "asgi": {"version": self.asgi_version, "spec_version": "2.0"},
                 "state": self.state}
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        ok, message = await self._ask(STARTUP)
        if ok is None:
            return  # unsupported, tolerated in auto mode
        if not ok:
            raise LifespanFailure(message or "lifespan.startup.failed without a message")
        self.log.info("ASGI lifespan startup complete")

    async def shutdown(self, timeout: float | None = None) -> None:
        if not self._supported or self._task is None or self._task.done():
            return
        try:
            ok, message = await asyncio.wait_for(self._ask(SHUTDOWN), timeout)
        except asyncio.TimeoutError:
            self.log.warning("ASGI lifespan shutdown did not complete within %s s", timeout)
            self._task.cancel()
            return
        if ok is False:
            self.log.error("ASGI lifespan shutdown failed: %s", message or "no message")
        elif ok:
            self.log.info("ASGI lifespan shutdown complete")

    async def _ask(self, phase: str):
        """Send ``lifespan.<phase>``; return ``(ok, message)``; ``(None, "")`` if unsupported."""
        self._phase = phase
        await self._to_app.put({"type": f"lifespan.{phase}"})
        answer = await self._answers.get()
        self._phase = None
        if answer is None:
            return None, ""
        return answer

    async def _run(self, scope: dict) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._app_failed(exc)
        else:
            if self._phase is not None:
                self._unsupported("the app returned without answering lifespan." + self._phase)
        if self._phase is not None:
            self._answers.put_nowait(None)

    def _app_failed(self, exc: Exception) -> None:
        if self._phase == SHUTDOWN:
            self.log.exception("ASGI lifespan shutdown raised an error")
            self._answers.put_nowait((False, repr(exc)))
            self._phase = None
        elif self._phase == STARTUP and self.mode == "on":
            self.log.exception("ASGI lifespan startup raised an error")
            self._answers.put_nowait((False, f"the app raised {exc!r}"))
            self._phase = None
        elif self._phase == STARTUP:
            self._unsupported(f"the app raised {exc!r}")
        else:
            self.log.exception("ASGI lifespan task raised an error")

    def _unsupported(self, why: str) -> None:
        self._supported = False
        if self.mode == "on":
            self._answers.put_nowait((False, f"lifespan is required (ASYNCWORKER_LIFESPAN=on) but {why}"))
            self._phase = None
        else:
            self.log.info("ASGI lifespan not supported by the app (%s): serving without it", why)

    async def _receive(self) -> dict:
        return await self._to_app.get()

    async def _send(self, message) -> None:
        kind = message_type(message)
        phase = kind.split(".")[1] if kind.count(".") == 2 else None
        if phase is None or phase != self._phase or kind.rsplit(".", 1)[1] not in ("complete", "failed"):
            raise RuntimeError(f"Unexpected lifespan message {kind!r}"
                               + (f" while waiting for lifespan.{self._phase}" if self._phase else ""))
        ok = kind.endswith(".complete")
        self._phase = None
        self._answers.put_nowait((ok, "" if ok else str(message.get("message", ""))))
