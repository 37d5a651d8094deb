"""The results as one markdown table, the ratios, the targets and the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.measure import Measurement
from dunning.run.stages import STAGES, table

# Row keys the ratios and targets refer to.
RUN, RERUN, PRECOMPILED, MJML, SMTP_SOURCE, NOOP = "run", "rerun", "precompiled", "mjml", "smtp-source", "noop"
FLEET = "fleet"  # one planner and N `dunning deliver` on PostgreSQL
REPORT, REPORT_HTML = "report", "report-html"  # `dunning report` over the sent emails
RUN_PHASES = (RUN, RERUN, NOOP)
FLEET_RATIO = "1 planner + N `dunning deliver` (PostgreSQL) ÷ `dunning run` (SQLite)"

TARGET_RATE = 2500.0          # notices per second, end to end
TARGET_VS_BASELINE = 5.0      # × the hand-rolled baseline (precompiled HTML)
TARGET_VS_SMTP_SOURCE = 0.5   # × smtp-source's rate
TARGET_FLEET_VS_RUN = 0.8     # 1 planner + N `dunning deliver` on PostgreSQL ÷ the single `dunning run` on SQLite
TARGET_NOOP_SECONDS = 1.0     # no-op run over the million accounts
TARGET_RSS_MB = 150.0         # peak RSS of every `dunning run`
TARGET_REPORT_SECONDS = 10.0  # `dunning report` over a million sent emails


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a phase's command."""

    measured: Measurement
    sink_cpu: float | None = None   # CPU seconds the SMTP sink spent meanwhile


@dataclass(frozen=True, slots=True)
class Row:
    """One measured phase: its command run once or more, each time on the same input.

    A repeated phase is reported by its median run (by wall time): on a shared machine a single
    run can land in a slow or a fast moment; the rates of every run are shown beside it. Peak RSS
    is the largest of any run.
    """

    key: str
    phase: str
    count: int      # what the rate is counted in: notices, messages or accounts
    unit: str
    runs: tuple[Run, ...]

    @property
    def median(self) -> Run:
        ordered = sorted(self.runs, key=lambda r: r.measured.wall)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def measured(self) -> Measurement:
        return self.median.measured

    @property
    def sink_cpu(self) -> float | None:
        return self.median.sink_cpu

    @property
    def rate(self) -> float:
        return self._rate(self.measured)

    @property
    def rates(self) -> list[float]:
        """The rate of every run, slowest first."""
        return sorted(self._rate(r.measured) for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.measured.peak_rss_mb for r in self.runs)

    @property
    def processes(self) -> int:
        return max(r.measured.processes for r in self.runs)

    def _rate(self, measured: Measurement) -> float:
        return self.count / measured.wall if measured.wall > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Budget:
    """What one `dunning run --profile-stages` counted: CPU seconds per stage, over all its processes."""

    seconds: dict[str, float]
    sent: int
    cpu: float   # the CPU seconds its processes spent, start-up included (wait4)


@dataclass(frozen=True, slots=True)
class FleetBudget:
    """What one profiled fleet counted (bench.fleet --profile-stages): CPU seconds per stage of its planner and
    of its deliverers together, what each kind of process and the server spent, and the sink."""

    planner: dict[str, float]
    deliverers: dict[str, float]
    sent: int
    cpu: dict[str, float]   # "planner", "deliverers" (together), "server" (absent when not on this machine)
    sink: float | None


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
    stages: Budget | None = None                        # the CPU budget per stage, when the run phase ran
    fleet_stages: FleetBudget | None = None             # the fleet's, when it ran

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
    value = ratio(results, FLEET, over=False)  # judged only when the PostgreSQL row ran
    found.append(Target(FLEET_RATIO, _times(value), f"≥ {TARGET_FLEET_VS_RUN:g}×",
                        None if value is None else value >= TARGET_FLEET_VS_RUN))
    if noop is not None:
        found.append(Target(f"no-op run over {noop.count:,} accounts", f"{noop.measured.wall:.2f} s",
                            f"< {TARGET_NOOP_SECONDS:g} s", noop.measured.wall < TARGET_NOOP_SECONDS))
    for row in (r for r in results.rows if r.key in (REPORT, REPORT_HTML)):
        found.append(Target(f"{row.phase} over {row.count:,} sent emails", f"{row.measured.wall:.2f} s",
                            f"< {TARGET_REPORT_SECONDS:g} s", row.measured.wall < TARGET_REPORT_SECONDS))
    for row in (r for r in results.rows if r.key in RUN_PHASES):
        found.append(Target(f"peak RSS: {row.phase}", f"{row.peak_rss_mb:.0f} MB",
                            f"< {TARGET_RSS_MB:g} MB", row.peak_rss_mb < TARGET_RSS_MB))
    return found


def ratio(results: Results, key: str, *, over: bool = True) -> float | None:
    """`dunning run`'s rate ÷ the rate of the row `key` (over=False: the row's ÷ the run's); None when either
    is missing."""
    run, other = results.row(RUN), results.row(key)
    if run is None or other is None:
        return None
    top, bottom = (run, other) if over else (other, run)
    return top.rate / bottom.rate if bottom.rate else None


def render(results: Results) -> str:
    """The whole report as markdown."""
    lines = ["# dunning benchmark", "", *results.header, "",
             "| phase | count | wall s | rate /s | CPU s | peak RSS MB | sink CPU s | rate of each run /s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in results.rows:
        m = row.measured
        sink = "" if row.sink_cpu is None else f"{row.sink_cpu:.2f}"
        processes = f" ({row.processes} processes)" if row.processes > 1 else ""
        each = " · ".join(f"{rate:,.0f}" for rate in row.rates) if len(row.runs) > 1 else ""
        lines.append(f"| {row.phase} | {row.count:,} {row.unit} | {m.wall:.2f} | {row.rate:,.0f} | "
                     f"{m.cpu:.2f} | {row.peak_rss_mb:.0f}{processes} | {sink} | {each} |")
    lines += [f"| {what} | not run | | | | | | |" for what in results.skipped]
    lines += ["", "| ratio | value |", "| --- | ---: |"]
    for key, what in ((PRECOMPILED, "`dunning run` ÷ baseline (precompiled HTML)"),
                      (MJML, "`dunning run` ÷ baseline (MJML compiled per message)"),
                      (SMTP_SOURCE, "`dunning run` ÷ smtp-source")):
        lines.append(f"| {what} | {_times(ratio(results, key))} |")
    lines.append(f"| {FLEET_RATIO} | {_times(ratio(results, FLEET, over=False))} |")
    lines += ["", "| target | measured | goal | result |", "| --- | ---: | ---: | --- |"]
    for target in targets(results):
        verdict = _verdict(target.ok, results.judged)
        lines.append(f"| {target.what} | {target.measured} | {target.goal} | {verdict} |")
    lines += budget(results.stages)
    lines += fleet_budget(results.fleet_stages)
    lines += ["", "Checks (the counts every phase must get right):", ""]
    lines += [f"- {'ok' if c.ok else 'FAILED'}: {c.what}" for c in results.checks]
    return "\n".join(lines) + "\n"


def budget(found: Budget | None) -> list[str]:
    """The CPU budget per sent email, stage by stage, below the targets (nothing when it was not measured)."""
    if found is None or not found.seconds:
        return []
    counted = sum(found.seconds.values())
    return ["", f"CPU budget of one more `dunning run --profile-stages` over the same accounts ({found.sent:,} "
                f"sent; all its processes; the stages count {counted:.2f} of its {found.cpu:.2f} CPU s, the rest "
                "is start-up: imports, settings, templates):", "", table(found.seconds, found.sent)]


def fleet_budget(found: FleetBudget | None) -> list[str]:
    """The fleet's CPU per sent email, stage by stage for its planner and its deliverers, then the rest of their
    processes' CPU (start-up and exit), the server and the sink (nothing when it was not measured)."""
    if found is None or not found.sent:
        return []
    per_email = 1e6 / found.sent
    lines = ["", f"CPU budget of one more fleet, each of its processes `--profile-stages` ({found.sent:,} sent), CPU "
                 "µs per sent email:", "", "| stage | planner | deliverers | together |",
             "| --- | ---: | ---: | ---: |"]

    def line(what: str, planner: float, deliverers: float) -> None:
        lines.append(f"| {what} | {planner * per_email:,.0f} | {deliverers * per_email:,.0f} | "
                     f"{(planner + deliverers) * per_email:,.0f} |")

    for stage in STAGES:
        if found.planner.get(stage) or found.deliverers.get(stage):
            line(stage, found.planner.get(stage, 0.0), found.deliverers.get(stage, 0.0))
    counted = (sum(found.planner.values()), sum(found.deliverers.values()))
    spent = (max(found.cpu.get("planner", 0.0), counted[0]), max(found.cpu.get("deliverers", 0.0), counted[1]))
    line("start-up and exit", spent[0] - counted[0], spent[1] - counted[1])
    line("their processes", *spent)
    others = (("the server", found.cpu.get("server")), ("the sink", found.sink))
    for what, seconds in others:
        lines.append(f"| {what} | | | {'n/a' if seconds is None else f'{seconds * per_email:,.0f}'} |")
    everything = sum(spent) + sum(seconds or 0.0 for _, seconds in others)
    lines.append(f"| all | | | {everything * per_email:,.0f} |")
    return lines


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
