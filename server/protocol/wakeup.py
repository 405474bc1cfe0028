"""Wakeable: one reading task sleeps until the side that feeds it calls ``_wake()``.

    protocol callbacks ──feed──► buffer, then _wake() ──► the sleeping reader's future is set
    reader task ──nothing buffered──► await _sleep(loop) ──► resumes, reads the buffer

A request body stream, the ASGI request body and a WebSocket connection each let
one task at a time wait for input. While it sleeps its future is in ``_waiter``
(None otherwise), so the owner can refuse a second reader and fail the first.
"""

import asyncio


class Wakeable:
    _waiter: asyncio.Future | None = None

    async def _sleep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until ``_wake()``, or until the owner fails or cancels the future."""
        self._waiter = waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def settle(waiter: asyncio.Future | None, exc: BaseException | None) -> None:
    """Wake whoever waits on ``waiter`` (a drain): with ``exc`` raised, or normally."""
    if waiter is not None and not waiter.done():
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)
            waiter.exception()  # retrieved: nobody may be waiting any more
