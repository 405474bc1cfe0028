"""The minimum rate is taken over the last ``grace`` seconds: a burst at the start of a
phase (a socket buffer's worth taken at once) does not keep a client that then stops
alive (averaged from the start, 100 KB would have kept it for 7 minutes at 240 B/s)."""

import asyncio
import time

from server.protocol.rates import MinimumRate


def watch(progress_at, minimum: float, grace: float, seconds: float):
    """Run a MinimumRate over ``progress_at(elapsed)``; the loop time it fired at, or None."""
    async def main():
        loop = asyncio.get_running_loop()
        fired = loop.create_future()
        started = time.monotonic()
        rate = MinimumRate(loop, minimum, grace, lambda: progress_at(time.monotonic() - started),
                           lambda: fired.done() or fired.set_result(time.monotonic() - started))
        rate.start()
        try:
            return await asyncio.wait_for(fired, seconds)
        except TimeoutError:
            return None
        finally:
            rate.stop()

    return asyncio.run(main())


def test_a_burst_then_nothing_is_too_slow_once_the_burst_leaves_the_window():
    fired = watch(lambda t: 100_000 if t > 0.2 else 0, minimum=240, grace=2, seconds=6)
    assert fired is not None and 2.5 < fired < 4.5, fired


def test_a_steady_reader_above_the_minimum_is_never_too_slow():
    assert watch(lambda t: int(1000 * t), minimum=240, grace=2, seconds=5) is None


def test_nothing_is_judged_before_the_grace():
    fired = watch(lambda t: 0, minimum=240, grace=2, seconds=5)
    assert fired is not None and 1.9 < fired < 3.2, fired


def test_a_held_rate_is_not_judged_and_gets_a_new_grace_when_released():
    """While the server does not read (its app does not take the body), the client cannot
    send: no rate is judged; released, the client gets a grace again."""
    async def main():
        loop = asyncio.get_running_loop()
        fired = []
        started = time.monotonic()
        rate = MinimumRate(loop, 240, 1, lambda: 0, lambda: fired.append(time.monotonic() - started))
        rate.start()
        rate.hold()
        await asyncio.sleep(3)
        held_fired = list(fired)
        rate.release()
        await asyncio.sleep(2.5)
        rate.stop()
        return held_fired, fired

    held_fired, fired = asyncio.run(main())
    assert held_fired == []
    assert len(fired) == 1 and 3.9 < fired[0] < 5.3, fired


def test_phases_that_end_at_once_share_one_timer_and_a_new_phase_keeps_its_grace():
    """Most request bodies end in the read that brought their head: start() then stop() at
    once must not make a timer each (a TimerHandle per request). The handle left by those
    phases serves the next one without judging it early: a stalled phase started 0.5 s
    after them still gets its whole grace."""
    async def main():
        loop = asyncio.get_running_loop()
        armed = []
        call_at = loop.call_at

        def counting_call_at(when, callback, *args, **kwargs):
            armed.append(when)
            return call_at(when, callback, *args, **kwargs)

        loop.call_at = counting_call_at
        fired = loop.create_future()
        rate = MinimumRate(loop, 240, 1.5, lambda: 0, lambda: fired.done() or fired.set_result(loop.time()))
        for _ in range(1000):
            rate.start()
            rate.stop()
        made = len(armed)
        await asyncio.sleep(0.5)
        started = loop.time()
        rate.start()
        try:
            when = await asyncio.wait_for(fired, 5)
        finally:
            rate.stop()
        return made, when - started

    made, after = asyncio.run(main())
    assert made == 1, made
    assert 1.5 <= after < 3.0, after
