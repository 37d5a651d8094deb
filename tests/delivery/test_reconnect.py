"""The waits between reconnections: growing, jittered, capped, never past the outage's allowance."""

from __future__ import annotations

import asyncio

from dunning.delivery.reconnect import FIRST_WAIT, LONGEST_WAIT, Outage, next_wait


def test_waits_double_up_to_a_ceiling_and_jitter_takes_at_most_half_off():
    """Without jitter the waits double from FIRST_WAIT to LONGEST_WAIT; the largest draw halves a wait."""
    assert [next_wait(n, lambda: 0.0) for n in (1, 2, 3)] == [FIRST_WAIT, 2 * FIRST_WAIT, 4 * FIRST_WAIT]
    assert next_wait(40, lambda: 0.0) == LONGEST_WAIT
    assert LONGEST_WAIT / 2 <= next_wait(40, lambda: 0.999) < LONGEST_WAIT


def test_an_outage_waits_on_its_clock_until_its_allowance_is_spent_and_ends_with_a_success():
    """Waits are taken from the injected clock and cut to the allowance; a success starts afresh."""
    now, waits, announced = [100.0], [], []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    outage = Outage(3.0, now=lambda: now[0], sleep=sleep, on_wait=announced.append, draw=lambda: 0.0)

    async def ride() -> None:
        while True:
            outage.failed()
            if not outage.riding_out():
                return
            await outage.wait()

    asyncio.run(ride())
    assert waits[:3] == [0.1, 0.2, 0.4] and sum(waits) == 3.0 and waits == announced
    assert outage.lasted() == 3.0 and not outage.riding_out()
    outage.ended()
    assert (outage.began, outage.failures, outage.lasted()) == (None, 0, 0.0)
