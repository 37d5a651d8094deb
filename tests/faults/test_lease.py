"""The lease of a batch on the process's own clock, and a lock held by a stalled process waited for only so long."""

from __future__ import annotations

import fcntl
import os
import time

import pytest

from dunning.emails import template_cache
from dunning.emails.template_cache import TemplateCache
from dunning.errors import EXIT_CODES, ExitCode, LeaseLost
from dunning.run.lease import MARGIN_SHARE, Lease
from dunning.run.summary import RunSummary


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_is_held_until_its_margin_and_renewal_counts_from_before_the_write():
    ticks = Ticks()
    lease = Lease(10, monotonic=ticks)
    with pytest.raises(LeaseLost):  # nothing claimed yet
        lease.check()
    lease = Lease(10, monotonic=ticks)
    lease.renewed(lease.started())
    ticks.now += 10 * (1 - MARGIN_SHARE)
    lease.check()
    started = lease.started()
    ticks.now += 1  # the renewal's write took this long: the lease counts from before it
    lease.renewed(started)
    ticks.now += 10 * (1 - MARGIN_SHARE) - 1
    lease.check()
    ticks.now += 0.001
    with pytest.raises(LeaseLost, match="lease lost: the batch's lease of 10 s ran out"):
        lease.check()
    lease.renewed(lease.started())  # a lost lease stays lost
    with pytest.raises(LeaseLost):
        lease.check()


def test_a_lost_lease_is_said_and_exits_75_whatever_else_the_queue_holds():
    lease = Lease(10, monotonic=Ticks())
    lease.renewed(lease.started())
    lease.lose("taken over")
    with pytest.raises(LeaseLost, match="lease lost: taken over"):
        lease.check()
    summary = RunSummary(held=3, failed=1)
    summary.stop("lease lost: taken over", code=ExitCode.PENDING)
    summary.stop("a later reason")
    assert summary.exit_code() == ExitCode.PENDING == EXIT_CODES[LeaseLost] == 75
    assert summary.stopped == "lease lost: taken over" and "stop_code" not in summary.as_dict()
    folded = RunSummary()
    folded.add(summary)
    assert folded.exit_code() == ExitCode.PENDING


def test_a_compile_lock_held_by_a_stalled_process_is_waited_for_only_so_long(tmp_path, monkeypatch):
    """Another process holds a slot's lock and never lets go (it is stopped): this one compiles anyway."""
    monkeypatch.setattr(template_cache, "LOCK_PATIENCE_SECONDS", 0.05)
    cache = TemplateCache.open(tmp_path / "cache")
    assert cache is not None
    with cache.locked("slot"):  # taken at once while nobody holds it
        pass
    holder = os.open(cache.directory / "slot.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # an open file description of its own, as another process's would be
    try:
        started = time.monotonic()
        with cache.locked("slot"):
            waited = time.monotonic() - started
    finally:
        os.close(holder)
    assert 0.05 <= waited < 2
