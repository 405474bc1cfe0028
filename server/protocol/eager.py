"""Request tasks whose first step runs at once, in the callback that made them.

A task made with ``create_task`` takes its first step on the next loop
iteration. Under load one iteration serves hundreds of connections, so for a
request that is already late (a new connection's first one, see
``ServerHttpProtocol.start_task``) that hop is a whole iteration of latency,
and a handler that answers without waiting (most do) could answer right away.

``create`` makes an ordinary ``asyncio.Task`` (``current_task()``, cancellation
and context variables behave as in any task), scheduled as usual; ``step_now``
then takes its first step here, with the task as the current task and in the
task's own context, as Python 3.12's eager tasks do. When the task's scheduled
step comes, it goes on from where that first step stopped (or just finishes).

The two are separate so the caller can record the task (strong references,
the request it serves) before any of the app's code runs.
"""

import asyncio
import contextvars
from collections.abc import Coroutine

from .compiled import compiled

_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task

NOT_STARTED, SUSPENDED, RETURNED, RAISED, RUNNING = range(5)


class _FirstStepAhead(Coroutine):
    """Stands in for ``coro`` in its task, replaying a first step already taken."""

    __slots__ = ("coro", "context", "_state", "_outcome")

    def __init__(self, coro, context):
        self.coro = coro
        self.context = context
        self._state = NOT_STARTED
        self._outcome = None  # what the first step yielded, returned or raised

    def first_step(self) -> None:
        """Take the coroutine's first step now, in the task's context."""
        self.context.run(self._first_step)

    def _first_step(self) -> None:
        try:
            self._outcome = self.coro.send(None)
            self._state = SUSPENDED
        except StopIteration as stop:
            self._outcome = stop.value
            self._state = RETURNED
        except BaseException as exc:  # noqa: BLE001 - the task raises it when its step comes
            self._outcome = exc
            self._state = RAISED

    def send(self, value):
        state = self._state
        if state == RUNNING or state == NOT_STARTED:
            return self.coro.send(value)
        self._state = RUNNING
        outcome, self._outcome = self._outcome, None
        if state == SUSPENDED:
            return outcome  # what the task now waits for, as if the coroutine had just yielded it
        if state == RETURNED:
            raise StopIteration(outcome)
        raise outcome

    def throw(self, typ, val=None, tb=None):
        if self._state in (RETURNED, RAISED):  # finished already: too late to throw into
            return self.send(None)
        self._state = RUNNING
        self._outcome = None
        if val is None and isinstance(typ, BaseException):
            return self.coro.throw(typ)
        return self.coro.throw(typ if val is None else val)

    def close(self) -> None:
        self._outcome = None
        self.coro.close()

    def __await__(self):
        raise TypeError("a request task's coroutine is driven by its task only")


# The compiled twin (_eager.c): the task reaches it without a Python call or a
# StopIteration per step. Both must behave the same (tests/protocol/test_eager.py).
FirstStepAhead = compiled("FirstStepAhead")
if FirstStepAhead is None:
    FirstStepAhead = _FirstStepAhead
else:
    Coroutine.register(FirstStepAhead)  # (what asyncio accepts as a task's coroutine)


def create(loop, coro) -> asyncio.Task:
    """A task for ``coro``, scheduled as usual; ``step_now`` may take its first step at once."""
    context = contextvars.copy_context()
    return loop.create_task(FirstStepAhead(coro, context), context=context)


def step_now(loop, task: asyncio.Task) -> None:
    """Take the first step of a task from ``create`` now, unless a task is running already
    (then it starts in its turn, as any task does)."""
    runner = task.get_coro()
    try:
        _enter_task(loop, task)
    except RuntimeError:  # called from inside another task
        return
    try:
        runner.first_step()
    finally:
        _leave_task(loop, task)
