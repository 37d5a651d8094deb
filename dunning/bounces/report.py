"""What the bounces say about the sending side: failures by reason, for the operator to fix. Reads only."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from dunning import store
from dunning.bounces.reasons import OURS

__all__ = ["ReasonCount", "by_reason"]


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """One reason's failures since a time: how many, to how many addresses and domains, and the latest's words."""

    reason: str
    kind: str
    failures: int
    addresses: int
    domains: tuple[tuple[str, int], ...]  # the recipients' domains, most failures first (at most five)
    first: datetime
    last: datetime
    example: str | None  # the latest failure's status and diagnostic

    def as_dict(self) -> dict[str, object]:
        """JSON-able values."""
        return {"reason": self.reason, "kind": self.kind, "failures": self.failures, "addresses": self.addresses,
                "domains": dict(self.domains), "first": self.first.isoformat(), "last": self.last.isoformat(),
                "example": self.example}


def by_reason(engine: Engine, *, since: datetime | None = None, sending_side_only: bool = True) -> list[ReasonCount]:
    """Recorded failures grouped by reason, most first: by default only the sending side's (never suppressing)."""
    b = store.bounces.c
    query = select(b.reason, b.kind, b.address, b.status, b.diagnostic, b.bounced_at).order_by(b.bounced_at)
    if since is not None:
        query = query.where(b.bounced_at >= since)
    if sending_side_only:
        query = query.where(b.kind == "ours")
    groups: dict[str, list[tuple[str, str, str | None, str | None, datetime]]] = {}
    with engine.connect() as conn:
        for reason, kind, address, status, diagnostic, at in conn.execute(query):
            groups.setdefault(reason or "undefined", []).append((kind, address, status, diagnostic, at))
    counts = [_count(reason, rows) for reason, rows in groups.items()]
    return sorted(counts, key=lambda c: (-c.failures, c.reason))


def _count(reason: str, rows: list[tuple[str, str, str | None, str | None, datetime]]) -> ReasonCount:
    domains = Counter(address.rpartition("@")[2] for _, address, *_ in rows)
    kind, _, status, diagnostic, _ = rows[-1]
    example = " ".join(filter(None, [status, diagnostic])) or None
    return ReasonCount(reason, "ours" if reason in OURS else kind, len(rows), len({r[1] for r in rows}),
                       tuple(domains.most_common(5)), rows[0][4], rows[-1][4], example)


