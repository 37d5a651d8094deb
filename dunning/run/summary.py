"""What one run did: the counts it reports and the exit code they make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dunning.errors import ExitCode

__all__ = ["RunSummary", "Progress", "DELIVERY_COUNTS"]

# The counts a delivery process adds to the run's summary.
DELIVERY_COUNTS = ("sent", "retried", "failed", "unknown")

Progress = Callable[[str, int], None]  # (what happened, how many)


@dataclass
class RunSummary:
    """The run's counts: what it planned, and what became of it."""

    planned: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    superseded: int = 0
    deferred: int = 0
    stopped: str | None = None

    def exit_code(self) -> ExitCode:
        """OK: all handled; FAILED: something failed or its outcome is unknown; PENDING: retries or stopped."""
        if self.failed or self.unknown:
            return ExitCode.FAILED
        if self.retried or self.stopped:
            return ExitCode.PENDING
        return ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-able values, in field order."""
        return asdict(self)

    def add(self, other: dict[str, Any]) -> None:
        """Fold in a delivery worker's counts."""
        for name in DELIVERY_COUNTS:
            setattr(self, name, getattr(self, name) + other[name])
        self.stopped = self.stopped or other["stopped"]
