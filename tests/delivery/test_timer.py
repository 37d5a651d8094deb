"""The give-up timer: a wait ends with its future's result, or with the default once its time has passed;
one timer serves every wait of a connection, re-armed only when it fires or a wait ends sooner."""

from __future__ import annotations

import asyncio

from dunning.delivery.timer import GiveUpTimer
from tests.delivery.conftest import ManualTimers


def test_a_wait_ends_with_the_result_or_with_the_default_once_its_time_has_passed(timers: ManualTimers) -> None:
    """A future set in time gives its result; one never set gives the default when the clock passes the wait."""
    async def scenario() -> tuple[bool, bool]:
        timer, loop = GiveUpTimer(timers), asyncio.get_running_loop()
        answered: asyncio.Future[bool] = loop.create_future()
        loop.call_soon(answered.set_result, False)
        first = await timer.wait(answered, 90, True)
        silent: asyncio.Future[bool] = loop.create_future()
        waiting = asyncio.ensure_future(timer.wait(silent, 90, True))
        await asyncio.sleep(0)
        timers.advance(89)
        await asyncio.sleep(0)
        assert not waiting.done()
        timers.advance(1)
        return first, await waiting

    assert asyncio.run(scenario()) == (False, True)


def test_waits_in_a_row_share_one_timer_until_it_fires(timers: ManualTimers) -> None:
    """A hundred waits answered at once schedule one timer; when it fires with no wait under way, nothing
    is given up and the next wait schedules it again."""
    scheduled: list[float] = []
    call_at = timers.call_at

    def counting(when: float, callback):  # type: ignore[no-untyped-def]
        scheduled.append(when)
        return call_at(when, callback)

    timers.call_at = counting  # type: ignore[method-assign]

    async def scenario() -> None:
        timer, loop = GiveUpTimer(timers), asyncio.get_running_loop()
        for _ in range(100):
            answered: asyncio.Future[bool] = loop.create_future()
            loop.call_soon(answered.set_result, False)
            assert await timer.wait(answered, 90, True) is False
            timers.now += 0.01
        assert scheduled == [90]
        timers.advance(100)
        await asyncio.sleep(0)
        answered = loop.create_future()
        loop.call_soon(answered.set_result, False)
        assert await timer.wait(answered, 90, True) is False
        assert len(scheduled) == 2

    asyncio.run(scenario())
