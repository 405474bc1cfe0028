"""The WSGI thread pool: results come back to the loop in order, and pool threads
do not preempt the loop thread when woken (SCHED_BATCH, where Linux has it)."""

import asyncio
import os

import pytest

from helpers import wait_for
from server.wsgi.pool import ThreadPool


def run_in_pool(fn, calls: int = 1, size: int = 2) -> list:
    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        results = []
        pool = ThreadPool(loop, size)

        def job(i):
            value = fn()
            pool.call_in_loop(collect, i, value)

        def collect(i, value):
            results.append((i, value))
            if len(results) == calls and not done.done():
                done.set_result(None)

        for i in range(calls):
            pool.submit(job, i)
        await asyncio.wait_for(done, 10)
        pool.shutdown()
        return results

    return asyncio.run(main())


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH on this platform")
def test_pool_threads_run_under_sched_batch_and_the_loop_does_not():
    policies = [policy for _, policy in run_in_pool(lambda: os.sched_getscheduler(0), calls=8)]
    assert policies == [os.SCHED_BATCH] * 8
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller (the loop's thread) is untouched


def test_calls_from_one_thread_reach_the_loop_in_order():
    results = run_in_pool(lambda: None, calls=500, size=1)
    assert [i for i, _ in results] == list(range(500))


def test_results_from_many_threads_at_once_all_reach_the_loop():
    """Threads race to wake the loop (one eventfd write per pending batch): none is lost."""
    results = run_in_pool(lambda: None, calls=5000, size=8)
    assert sorted(i for i, _ in results) == list(range(5000))


def test_busy_and_waiting_count_running_and_queued_jobs_and_pool_on_finds_the_pool():
    """Two threads, five jobs held on an event: two run, three wait, the oldest for a while."""
    import threading
    import time

    from server.wsgi.pool import pool_on

    async def main():
        loop = asyncio.get_running_loop()
        pool = ThreadPool(loop, 2)
        assert pool_on(loop) is pool and (pool.busy(), pool.waiting()) == (0, (0, 0.0))
        release = threading.Event()
        for _ in range(5):
            pool.submit(release.wait)
        await asyncio.sleep(0.3)
        busy, (waiting, longest) = pool.busy(), pool.waiting()
        release.set()
        deadline = time.monotonic() + 5
        while (pool.busy(), pool.waiting()[0]) != (0, 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        after = pool.busy(), pool.waiting()
        pool.shutdown()
        return busy, waiting, longest, after, pool_on(loop)

    busy, waiting, longest, after, found = asyncio.run(main())
    assert (busy, waiting) == (2, 3) and 0.2 < longest < 5, (busy, waiting, longest)
    assert after == (0, (0, 0.0))
    assert found is None  # a pool shut down serves no loop


class ListLog:
    def __init__(self):
        self.warnings = []

    def warning(self, msg, *args):
        self.warnings.append(msg % args)


def saturation_warnings(threads_held: int, size: int = 2) -> list[str]:
    """The warnings of one saturation check, with ``threads_held`` of ``size`` threads
    running a held job and one more job waiting for a thread."""
    import threading
    import time

    async def main():
        loop = asyncio.get_running_loop()
        log = ListLog()
        pool = ThreadPool(loop, size, log=log)
        release = threading.Event()
        try:
            for _ in range(threads_held):
                pool.submit(release.wait)
            deadline = time.monotonic() + 5
            while pool.busy() < threads_held and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert pool.busy() == threads_held
            if threads_held == size:
                pool.submit(release.wait)  # waits: every thread is held
            else:
                # A job submitted while a thread is free, caught before that thread was
                # scheduled to take it (as a check can find it at c=1): queued, not taken.
                pool._queued_at.append(time.monotonic())
            pool._check_saturation()
            return log.warnings
        finally:
            release.set()
            pool.shutdown()

    return asyncio.run(main())


def test_jobs_waiting_while_every_thread_is_busy_are_warned_about():
    warnings = saturation_warnings(threads_held=2)
    assert len(warnings) == 1 and warnings[0].startswith("All 2 app threads are busy: 1 requests wait")


def test_a_job_not_yet_taken_by_a_free_thread_is_not_saturation():
    assert saturation_warnings(threads_held=1) == []
    assert saturation_warnings(threads_held=0) == []


class ErrorLog:
    def __init__(self):
        self.errors = []

    def exception(self, msg, *args):
        self.errors.append(msg % args)


def test_what_a_job_or_a_callback_raises_is_logged_and_the_pool_goes_on():
    """A job's exception (an app's sys.exit() too) never ends its thread, a loop callback's
    never the loop: each is logged, and the next job and callback run."""
    async def main():
        loop = asyncio.get_running_loop()
        log = ErrorLog()
        pool = ThreadPool(loop, 1, log=log)
        done = loop.create_future()

        def fails_on_the_loop():
            raise ValueError("callback")

        def job(i):
            if i == 0:
                raise SystemExit(3)
            if i == 1:
                pool.call_in_loop(fails_on_the_loop)
                return
            pool.call_in_loop(done.set_result, i)

        for i in range(3):
            pool.submit(job, i)
        result = await asyncio.wait_for(done, 10)
        pool.shutdown()
        return result, log.errors

    result, errors = asyncio.run(main())
    assert result == 2
    assert errors == ["Error in a thread pool job", "Error in a loop callback from the thread pool"]


def test_a_backlog_is_backlog_waiting_jobs_and_room_is_told_once_a_job_taken_leaves_room_or_fewer():
    """One thread, held, and BACKLOG jobs waiting: backlogged. The loop's callback comes once,
    when the thread takes a job that leaves ROOM waiting, not before; asked while there is
    room, nothing is registered."""
    import threading

    from server.wsgi.pool import BACKLOG, ROOM

    async def main():
        loop = asyncio.get_running_loop()
        pool = ThreadPool(loop, 1)
        told, seen = [], []
        holds = [threading.Event() for _ in range(BACKLOG + 1)]
        try:
            assert not pool.backlogged() and pool.call_when_room(lambda: told.append("early")) is False
            pool.submit(holds[0].wait)
            await wait_for(lambda: pool.busy() == 1)
            for hold in holds[1:-1]:
                pool.submit(hold.wait)
            assert not pool.backlogged()  # (BACKLOG - 1 waiting)
            pool.submit(holds[-1].wait)
            assert pool.backlogged()
            room = loop.create_future()
            assert pool.call_when_room(lambda: room.set_result(pool.waiting()[0])) is True
            for i in range(BACKLOG - ROOM - 1):  # each ends a job; the thread takes the next
                holds[i].set()
                await wait_for(lambda: pool.waiting()[0] == BACKLOG - i - 1)
                marker = loop.create_future()  # (behind any call the thread made before its job)
                pool.call_in_loop(marker.set_result, None)
                await asyncio.wait_for(marker, 5)
                seen.append(room.done())
            holds[BACKLOG - ROOM - 1].set()  # the job it takes leaves ROOM waiting
            waiting = await asyncio.wait_for(room, 5)
            for hold in holds:
                hold.set()
            await wait_for(lambda: pool.busy() == 0)
            return waiting, told, seen
        finally:
            for hold in holds:
                hold.set()
            pool.shutdown()

    waiting, told, seen = asyncio.run(main())
    assert waiting <= ROOM and told == [] and seen == [False] * (BACKLOG - ROOM - 1)
