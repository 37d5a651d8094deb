"""What one run did: the counts it reports and the exit code they make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from dunning.errors import ExitCode
from dunning.ledger import QueueState, RecordCounts
from dunning.run import stages
from dunning.vocabulary import PlanStatus

__all__ = ["RunSummary", "Progress"]

Progress = Callable[[str, int], None]  # (what happened, how many)


@dataclass
class RunSummary:
    """The run's counts: what it planned and what became of it, then the queue's state once it ended.

    planned: emails the plan decided to send in this run (skipped, superseded and deferred notices are
    counted apart); sent, retried, failed, unknown: outcomes this run recorded; recipients_refused:
    recipients refused for good (5xx) by the emails this run sent; expired: leases of earlier runs
    found expired. suppressed: notices not sent because every recipient's address is suppressed after
    bounces (their keys recorded); unreachable: accounts among them, due for dunning with no reachable contact
    (`dunning suppressions list --accounts`). waiting: emails in the queue waiting for a retry that is due
    later; held: emails whose outcome is unknown, from this run or earlier ones, awaiting `dunning reconcile`.
    stages: CPU seconds per stage of every process of the run, when it is profiled (run/stages).
    """

    planned: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    recipients_refused: int = 0
    skipped: int = 0
    superseded: int = 0
    suppressed: int = 0
    unreachable: int = 0
    deferred: int = 0
    expired: int = 0
    waiting: int = 0
    held: int = 0
    stopped: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    stop_code: ExitCode | None = field(default=None, repr=False)  # the exit code its stop calls for, if any

    def exit_code(self) -> ExitCode:
        """The code its stop calls for (PENDING: the run lost its lease, another process sends what it held;
        DATA: a template's email is too large); FAILED: an email failed in this run, or one is held unknown;
        PENDING: retries wait, or delivery stopped early; else OK."""
        if self.stop_code is not None:
            return self.stop_code
        if self.failed or self.held:
            return ExitCode.FAILED
        if self.waiting or self.stopped:
            return ExitCode.PENDING
        return ExitCode.OK

    def queue_state(self, state: QueueState) -> None:
        """Take waiting and held from the queue's state, read after the run (ledger.queue_state)."""
        self.waiting, self.held = state.waiting, state.held

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-able values, in field order (stages only when the run was profiled)."""
        values = asdict(self)
        del values["stop_code"]  # said by stopped
        if not self.stages:
            del values["stages"]
        return values

    def stop(self, reason: str, *, code: ExitCode | None = None) -> None:
        """Delivery stops early, for this reason (the first one given stays), calling for this exit code."""
        if self.stopped is None:
            self.stopped, self.stop_code = reason, code

    def add(self, other: RunSummary) -> None:
        """Fold in a delivery worker's counts."""
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.unknown += other.unknown
        self.recipients_refused += other.recipients_refused
        if self.stopped is None:
            self.stopped, self.stop_code = other.stopped, other.stop_code
        stages.add(self.stages, other.stages)

    def record(self, counts: RecordCounts) -> None:
        """Add what the ledger recorded (fenced-out outcomes are not this worker's to count)."""
        self.sent += counts.sent
        self.retried += counts.retry
        self.failed += counts.failed
        self.unknown += counts.unknown

    def planned_notice(self, status: PlanStatus) -> None:
        """Count one planned notice under its status (paused ones are not counted)."""
        match status:
            case "send":
                self.planned += 1
            case "deferred":
                self.deferred += 1
            case "skipped":
                self.skipped += 1
            case "superseded":
                self.superseded += 1
            case "suppressed":
                self.suppressed += 1
            case "paused":
                pass
