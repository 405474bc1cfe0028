"""Tests of ConnectionTimer (server/protocol/timers.py) on a real asyncio loop.

Timeouts are short (SHORT seconds). A test waits for the timeout callback through a future
the callback resolves, bounded by ``asyncio.wait_for``; a test that checks that nothing
fires waits instead for a marker scheduled on the loop after the deadline (``call_later``).
Times are read from ``loop.time()``, the clock the timer itself uses.
"""

import asyncio
import sys

import pytest

from server.protocol.timers import GONE_TIMER, NO_TIMER, ConnectionTimer, FirstWaits

SHORT = 0.05
BOUND = 2.0  # no wait below may take this long


class Recorder:
    """A timer's callback: records (phase, loop time) and resolves ``fired``."""

    def __init__(self, loop):
        self.loop = loop
        self.calls = []
        self.fired = loop.create_future()

    def __call__(self, phase):
        self.calls.append((phase, self.loop.time()))
        if not self.fired.done():
            self.fired.set_result(phase)

    @property
    def phases(self):
        return [phase for phase, _ in self.calls]


def run(test):
    """Run ``test(loop, timer, recorder)`` (a coroutine function) on a fresh loop."""
    async def main():
        loop = asyncio.get_running_loop()
        recorder = Recorder(loop)
        timer = ConnectionTimer(loop, recorder)
        try:
            return await test(loop, timer, recorder)
        finally:
            timer.cancel()
    return asyncio.run(main())


async def fired(recorder) -> float:
    """Wait (bounded) for the callback; return the loop time it ran at."""
    await asyncio.wait_for(asyncio.shield(recorder.fired), BOUND)
    return recorder.calls[0][1]


async def passing(loop, seconds: float) -> None:
    """Wait until a marker scheduled ``seconds`` from now has run."""
    marker = loop.create_future()
    loop.call_later(seconds, marker.set_result, None)
    await asyncio.wait_for(marker, BOUND)


# --- tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["head", "body", "keepalive", "drain"])
def test_fires_once_with_its_phase(phase):
    async def test(loop, timer, rec):
        t0 = loop.time()
        timer.start(phase, SHORT)
        assert timer.phase == phase
        at = await fired(rec)
        await passing(loop, SHORT)
        return at - t0, timer.phase, rec.phases
    elapsed, phase_after, phases = run(test)
    assert elapsed >= SHORT and phase_after is None and phases == [phase]


def test_touch_postpones():
    async def test(loop, timer, rec):
        touched = []

        def touch():
            touched.append(loop.time())
            timer.touch()
        timer.start("body", 2 * SHORT)
        loop.call_later(SHORT, touch)
        at = await fired(rec)
        return at - touched[0], rec.phases
    since_touch, phases = run(test)
    assert since_touch >= 2 * SHORT and phases == ["body"]


def test_touch_without_a_phase_does_nothing():
    async def test(loop, timer, rec):
        timer.touch()
        await passing(loop, SHORT)
        return timer.phase, rec.calls
    assert run(test) == (None, [])


def test_stop_prevents_firing():
    async def test(loop, timer, rec):
        timer.start("head", SHORT)
        timer.stop()
        assert timer.phase is None
        await passing(loop, 2 * SHORT)
        return rec.calls
    assert run(test) == []


def test_restart_after_stop_fires_at_the_new_deadline():
    async def test(loop, timer, rec):
        timer.start("head", SHORT)
        timer.stop()
        t1 = loop.time()
        timer.start("keepalive", 2 * SHORT)  # the old handle is reused, then re-armed
        at = await fired(rec)
        return at - t1, rec.phases
    elapsed, phases = run(test)
    assert elapsed >= 2 * SHORT and phases == ["keepalive"]


def test_cancel():
    async def test(loop, timer, rec):
        timer.start("head", SHORT)
        timer.cancel()
        assert timer.phase is None
        await passing(loop, 2 * SHORT)
        calls = list(rec.calls)
        timer.start("body", SHORT)  # usable again after cancel
        return calls, await fired(rec) is not None, rec.phases
    assert run(test) == ([], True, ["body"])


def test_close_lets_the_callback_go_and_a_later_start_times_out_into_nothing():
    """At a connection's teardown: the timer no longer holds its callback (a bound method of
    the connection, which holds the timer), and a start after it fires harmlessly."""
    async def test(loop, timer, rec):
        held = sys.getrefcount(rec)
        timer.start("head", SHORT)
        timer.close()
        assert sys.getrefcount(rec) == held - 1 and timer.phase is None
        timer.start("body", SHORT)
        await passing(loop, 3 * SHORT)
        return rec.calls
    assert run(test) == []


@pytest.mark.parametrize("seconds", [0, -1])
def test_start_with_no_timeout_disables(seconds):
    async def test(loop, timer, rec):
        timer.start("head", SHORT)
        timer.start("keepalive", seconds)
        assert timer.phase is None
        await passing(loop, 2 * SHORT)
        return rec.calls
    assert run(test) == []


def test_earlier_deadline_after_a_later_one():
    async def test(loop, timer, rec):
        timer.start("keepalive", 60)
        t1 = loop.time()
        timer.start("head", SHORT)
        at = await fired(rec)
        return at - t1, rec.phases
    elapsed, phases = run(test)
    assert SHORT <= elapsed < BOUND and phases == ["head"]


def test_later_deadline_after_an_earlier_one():
    async def test(loop, timer, rec):
        timer.start("head", SHORT)
        t1 = loop.time()
        timer.start("body", 3 * SHORT)
        at = await fired(rec)
        await passing(loop, SHORT)
        return at - t1, rec.phases
    elapsed, phases = run(test)
    assert elapsed >= 3 * SHORT and phases == ["body"]


def test_phase_changes_without_a_new_deadline_report_the_last_phase():
    async def test(loop, timer, rec):
        timer.start("head", SHORT)
        timer.start("body", SHORT)
        await fired(rec)
        return rec.phases
    assert run(test) == ["body"]


def test_no_timer_refuses_a_phase_and_a_gone_one_takes_it_into_nothing():
    """NO_TIMER stands for a timer not made yet: started, it would never time out, so it
    refuses loudly. GONE_TIMER (a connection lost) takes any phase and never fires."""
    with pytest.raises(RuntimeError, match="NO_TIMER started"):
        NO_TIMER.start("head", SHORT)
    GONE_TIMER.start("keepalive", SHORT)
    for timer in (NO_TIMER, GONE_TIMER):
        timer.touch()
        timer.stop()
        timer.cancel()
        timer.close()
        assert timer.phase is None and timer._handle is None


class Waiting:
    """A connection waiting for its first bytes: records when its wait is told over."""

    def __init__(self, loop, told: list):
        self.loop = loop
        self.told = told
        self.began = loop.time()

    def first_wait_over(self):
        self.told.append((self, self.loop.time()))


def test_first_waits_end_oldest_first_each_after_its_own_seconds():
    """Every wait is as long: each connection is told once its own has passed, oldest
    first; one taken out before is never told, and none is kept after."""

    async def main():
        loop = asyncio.get_running_loop()
        waits, told = FirstWaits(SHORT), []
        first = Waiting(loop, told)
        waits.add(first, loop)
        await asyncio.sleep(SHORT / 2)
        second, dropped = Waiting(loop, told), Waiting(loop, told)
        waits.add(second, loop)
        waits.add(dropped, loop)
        waits.waiting.pop(dropped)
        marker = loop.create_future()
        loop.call_later(3 * SHORT, marker.set_result, None)
        await asyncio.wait_for(marker, BOUND)
        assert [waiting for waiting, _ in told] == [first, second]
        assert all(when >= waiting.began + SHORT for waiting, when in told)
        assert not any(waiting in waits for waiting in (first, second, dropped))

    asyncio.run(main())


def test_first_waits_without_a_limit_keep_nothing_and_move_to_a_new_loop():
    """``seconds`` 0: no limit, nothing kept. A config used on a new loop (its old loop closed)
    times its waits there."""
    told = []
    unlimited = FirstWaits(0)

    async def add_and_wait(waits):
        loop = asyncio.get_running_loop()
        waiting = Waiting(loop, told)
        waits.add(waiting, loop)
        if waits.seconds > 0:
            await asyncio.sleep(3 * SHORT)
        return waiting

    kept = asyncio.run(add_and_wait(unlimited))
    assert kept not in unlimited and told == []
    waits = FirstWaits(SHORT)
    loop = asyncio.new_event_loop()
    waits.add(Waiting(loop, told), loop)  # (never run: closed with its wait)
    loop.close()
    moved = asyncio.run(add_and_wait(waits))
    assert [waiting for waiting, _ in told] == [moved]
