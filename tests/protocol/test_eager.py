"""eager.py: a request task's first step runs at once, and the task is otherwise an
ordinary task (current_task, context variables, results, exceptions, cancellation)."""

import asyncio
import contextvars
import importlib.util

import pytest

from server.protocol import eager
from server.protocol.compiled import compiled
from server.workers.asyncworker import new_event_loop

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])
COMPILED = compiled("FirstStepAhead")
IN_USE = eager.FirstStepAhead  # (before the fixture below swaps it)
IMPLEMENTATIONS = {"python": eager._FirstStepAhead, "compiled": COMPILED}


@pytest.fixture(autouse=True, params=sorted(IMPLEMENTATIONS))
def implementation(request, monkeypatch):
    """Every test runs on the Python reference and on its compiled twin (_eager.c)."""
    runner = IMPLEMENTATIONS[request.param]
    if runner is None:
        pytest.skip("the C extension is not built (or ASYNCWORKER_PURE_PYTHON=1)")
    monkeypatch.setattr(eager, "FirstStepAhead", runner)
    return runner

request_id = contextvars.ContextVar("request_id", default=None)


def run(loop_name, fn):
    loop = new_event_loop(loop_name)
    try:
        return loop.run_until_complete(fn(loop))
    finally:
        loop.close()


def start_from_a_callback(loop, coro, then=lambda task: None):
    """Make and step a task the way the protocol does: from a loop callback, not a task;
    ``then(task)`` runs in the same callback, before the task's scheduled step."""
    made = loop.create_future()

    def callback():
        task = eager.create(loop, coro)
        eager.step_now(loop, task)
        then(task)
        made.set_result(task)

    loop.call_soon(callback)
    return made


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_handler_that_does_not_wait_runs_to_its_end_in_the_first_step(loop_name):
    seen = []

    async def handler():
        seen.append(asyncio.current_task())
        request_id.set("inside")
        return "answer"

    async def main(loop):
        at_once = []
        task = await start_from_a_callback(loop, handler(), lambda task: at_once.append(len(seen)))
        result = await task
        return at_once, seen[0] is task, result, request_id.get()

    assert run(loop_name, main) == ([1], True, "answer", None)  # the variable stayed in the task's context


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_handler_that_waits_goes_on_in_its_task(loop_name):
    steps = []

    async def handler(gate):
        steps.append(("first", asyncio.current_task()))
        request_id.set(1)
        value = await gate
        steps.append(("second", asyncio.current_task(), request_id.get()))
        async with asyncio.timeout(5):  # needs a current task
            await asyncio.sleep(0)
        return value * 2

    async def main(loop):
        gate = loop.create_future()
        task = await start_from_a_callback(loop, handler(gate))
        first = [s[0] for s in steps]
        gate.set_result(21)
        result = await task
        return first, steps[0][1] is task, steps[1][1] is task, steps[1][2], result

    assert run(loop_name, main) == (["first"], True, True, 1, 42)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_an_exception_in_the_first_step_is_the_tasks_exception(loop_name):
    async def handler():
        raise ValueError("boom")

    async def main(loop):
        task = await start_from_a_callback(loop, handler())
        with pytest.raises(ValueError, match="boom"):
            await task
        return True

    assert run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_task_cancelled_before_its_scheduled_step_is_cancelled_where_it_waits(loop_name):
    cleaned = []

    async def handler(gate):
        try:
            await gate
        finally:
            cleaned.append(True)

    async def main(loop):
        gate = loop.create_future()
        task = await start_from_a_callback(loop, handler(gate))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return cleaned, task.cancelled()

    assert run(loop_name, main) == ([True], True)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_handler_that_finished_in_its_first_step_keeps_its_result_when_cancelled(loop_name):
    """Its work is done (the response may be on the wire): as with Python 3.12's eager
    tasks, the cancellation comes too late to undo it."""
    ran = []

    async def handler():
        ran.append(True)
        return "done"

    async def main(loop):
        task = await start_from_a_callback(loop, handler(), lambda task: task.cancel())
        return ran, await task

    assert run(loop_name, main) == ([True], "done")


@pytest.mark.parametrize("loop_name", LOOPS)
def test_from_inside_another_task_the_first_step_waits_for_its_turn(loop_name):
    steps = []

    async def handler():
        steps.append(asyncio.current_task())

    async def main(loop):
        task = eager.create(loop, handler())
        eager.step_now(loop, task)  # main is the running task: no step now
        not_yet = list(steps)
        await task
        return not_yet, steps == [task]

    assert run(loop_name, main) == ([], True)


def test_the_compiled_twin_is_the_one_in_use_when_built():
    assert IN_USE is (COMPILED or eager._FirstStepAhead)


@pytest.mark.parametrize("returned", [None, 7, (1, 2), ValueError("a value, not raised")])
def test_send_replays_a_first_step_that_returned(implementation, returned):
    """Called as a method (not through the task's slot), a return is a StopIteration that
    carries the value as it is: a tuple is not unpacked, an exception is not raised."""
    async def handler():
        return returned

    runner = implementation(handler(), contextvars.copy_context())
    runner.first_step()
    with pytest.raises(StopIteration) as stop:
        runner.send(None)
    assert stop.value.value is returned


def test_the_first_step_runs_in_the_runners_context(implementation):
    async def handler():
        request_id.set("inside")
        return request_id.get()

    context = contextvars.copy_context()
    runner = implementation(handler(), context)
    runner.first_step()
    assert context[request_id] == "inside" and request_id.get() is None
    with pytest.raises(StopIteration) as stop:
        runner.send(None)
    assert stop.value.value == "inside"


def test_throw_after_a_suspended_first_step_reaches_the_coroutine(implementation):
    async def handler(gate):
        try:
            await gate
        except KeyError as exc:
            return f"caught {exc.args[0]}"

    loop = asyncio.new_event_loop()
    try:
        runner = implementation(handler(loop.create_future()), contextvars.copy_context())
        runner.first_step()
        with pytest.raises(StopIteration) as stop:
            runner.throw(KeyError("k"))
        assert stop.value.value == "caught k"
    finally:
        loop.close()


@pytest.mark.skipif(COMPILED is None, reason="the C extension is not built (or ASYNCWORKER_PURE_PYTHON=1)")
def test_a_compiled_runner_without_a_coroutine_raises_instead_of_crashing():
    runner = COMPILED.__new__(COMPILED)  # (never initialised)
    for step in (runner.first_step, lambda: runner.send(None), lambda: runner.throw(KeyError("k"))):
        with pytest.raises(RuntimeError, match="no coroutine"):
            step()
    runner.close()  # (nothing to close)
