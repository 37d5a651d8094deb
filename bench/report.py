"""The results as one markdown table, the ratios, the targets and the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.measure import Measurement

# Row keys the ratios and targets refer to.
RUN, RERUN, PRECOMPILED, MJML, SMTP_SOURCE, NOOP = "run", "rerun", "precompiled", "mjml", "smtp-source", "noop"
RUN_PHASES = (RUN, RERUN, NOOP)

TARGET_RATE = 2500.0          # notices per second, end to end
TARGET_VS_BASELINE = 5.0      # × the hand-rolled baseline (precompiled HTML)
TARGET_VS_SMTP_SOURCE = 0.35  # × smtp-source's rate
TARGET_NOOP_SECONDS = 3.0     # no-op run over the million accounts
TARGET_RSS_MB = 150.0         # peak RSS of every `dunning run`


@dataclass(frozen=True, slots=True)
class Row:
    """One measured phase."""

    key: str
    phase: str
    count: int      # what the rate is counted in: notices, messages or accounts
    unit: str
    measured: Measurement
    sink_cpu: float | None = None   # CPU seconds the SMTP sink spent meanwhile

    @property
    def rate(self) -> float:
        return self.count / self.measured.wall if self.measured.wall > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Check:
    """A correctness condition: a benchmark that breaks one measured nothing worth reporting."""

    what: str
    ok: bool


@dataclass
class Results:
    """Everything one benchmark run produced."""

    header: list[str]
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # phases that could not run, and why
    judged: bool = True                                 # False for --small: targets shown, not judged

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    def check(self, what: str, ok: bool) -> bool:
        self.checks.append(Check(what, ok))
        return ok


@dataclass(frozen=True, slots=True)
class Target:
    what: str
    measured: str
    goal: str
    ok: bool | None   # None: not measured


def targets(results: Results) -> list[Target]:
    """Every target of the issue, against what this run measured."""
    run, noop = results.row(RUN), results.row(NOOP)
    found: list[Target] = []
    if run is not None:
        found.append(Target("`dunning run` notices per second, end to end", f"{run.rate:,.0f}/s",
                            f"≥ {TARGET_RATE:,.0f}/s", run.rate >= TARGET_RATE))
    for key, what, goal in ((PRECOMPILED, "`dunning run` ÷ hand-rolled baseline", TARGET_VS_BASELINE),
                            (SMTP_SOURCE, "`dunning run` ÷ smtp-source", TARGET_VS_SMTP_SOURCE)):
        value = ratio(results, key)
        found.append(Target(what, _times(value), f"≥ {goal:g}×", None if value is None else value >= goal))
    if noop is not None:
        found.append(Target(f"no-op run over {noop.count:,} accounts", f"{noop.measured.wall:.2f} s",
                            f"< {TARGET_NOOP_SECONDS:g} s", noop.measured.wall < TARGET_NOOP_SECONDS))
    for row in (r for r in results.rows if r.key in RUN_PHASES):
        found.append(Target(f"peak RSS: {row.phase}", f"{row.measured.peak_rss_mb:.0f} MB",
                            f"< {TARGET_RSS_MB:g} MB", row.measured.peak_rss_mb < TARGET_RSS_MB))
    return found


def ratio(results: Results, key: str) -> float | None:
    """`dunning run`'s rate ÷ the rate of the row `key`; None when either is missing."""
    run, other = results.row(RUN), results.row(key)
    if run is None or other is None or other.rate == 0:
        return None
    return run.rate / other.rate


def render(results: Results) -> str:
    """The whole report as markdown."""
    lines = ["# dunning benchmark", "", *results.header, "",
             "| phase | count | wall s | rate /s | CPU s | peak RSS MB | sink CPU s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in results.rows:
        m = row.measured
        sink = "" if row.sink_cpu is None else f"{row.sink_cpu:.2f}"
        processes = f" ({m.processes} processes)" if m.processes > 1 else ""
        lines.append(f"| {row.phase} | {row.count:,} {row.unit} | {m.wall:.2f} | {row.rate:,.0f} | "
                     f"{m.cpu:.2f} | {m.peak_rss_mb:.0f}{processes} | {sink} |")
    lines += [f"| {what} | not run | | | | | |" for what in results.skipped]
    lines += ["", "| ratio | value |", "| --- | ---: |"]
    for key, what in ((PRECOMPILED, "`dunning run` ÷ baseline (precompiled HTML)"),
                      (MJML, "`dunning run` ÷ baseline (MJML compiled per message)"),
                      (SMTP_SOURCE, "`dunning run` ÷ smtp-source")):
        lines.append(f"| {what} | {_times(ratio(results, key))} |")
    lines += ["", "| target | measured | goal | result |", "| --- | ---: | ---: | --- |"]
    for target in targets(results):
        verdict = _verdict(target.ok, results.judged)
        lines.append(f"| {target.what} | {target.measured} | {target.goal} | {verdict} |")
    lines += ["", "Checks (the counts every phase must get right):", ""]
    lines += [f"- {'ok' if c.ok else 'FAILED'}: {c.what}" for c in results.checks]
    return "\n".join(lines) + "\n"


def exit_code(results: Results) -> int:
    """0: every check passed (and, unless --small, every target met); 1: a check failed; 3: a target missed."""
    if not all(c.ok for c in results.checks):
        return 1
    if results.judged and any(t.ok is False for t in targets(results)):
        return 3
    return 0


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def _verdict(ok: bool | None, judged: bool) -> str:
    if ok is None:
        return "not measured"
    if not judged:
        return "not judged (--small)"
    return "pass" if ok else "**FAIL**"
