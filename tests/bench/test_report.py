"""A repeated phase is reported by its median run, with every run's rate, and its largest peak RSS."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench import report  # noqa: E402
from bench.measure import Measurement  # noqa: E402


def _run(wall: float, rss: float, processes: int = 2) -> report.Run:
    measured = Measurement(argv=("dunning", "run"), wall=wall, cpu=wall * 1.8, peak_rss_mb=rss,
                           processes=processes, returncode=0, stdout="", stderr="")
    return report.Run(measured, sink_cpu=wall / 4)


def test_a_repeated_phase_is_its_median_run_and_its_largest_peak() -> None:
    row = report.Row(report.RUN, "`dunning run`, end to end", 1000, "notices",
                     (_run(0.5, 120), _run(0.25, 140), _run(0.4, 100)))
    assert row.measured.wall == 0.4 and row.rate == 2500 and row.sink_cpu == 0.1
    assert row.rates == [2000, 2500, 4000]
    assert row.peak_rss_mb == 140


def test_the_table_shows_every_run_and_judges_the_median() -> None:
    results = report.Results(header=[])
    results.rows.append(report.Row(report.RUN, "`dunning run`, end to end", 1000, "notices",
                                   (_run(0.5, 120), _run(0.3, 160), _run(0.4, 100))))
    results.rows.append(report.Row(report.NOOP, "`dunning run`, nothing due (no-op)", 10, "accounts",
                                   (_run(1.0, 60, processes=1),)))
    text = report.render(results)
    assert "| `dunning run`, end to end | 1,000 notices | 0.40 | 2,500 | 0.72 | 160 (2 processes) | 0.10 | " \
           "2,000 · 2,500 · 3,333 |" in text
    assert "| `dunning run`, nothing due (no-op) | 10 accounts | 1.00 | 10 | 1.80 | 60 | 0.25 |  |" in text
    verdicts = {t.what: t.ok for t in report.targets(results)}
    assert verdicts["`dunning run` notices per second, end to end"] is True
    assert verdicts["peak RSS: `dunning run`, end to end"] is False   # one run over the limit is enough
    assert report.exit_code(results) == 3


def test_the_cpu_budget_follows_the_targets_when_measured() -> None:
    """The profiled run's stages per sent email, and how much of its CPU they cover; nothing when not run."""
    results = report.Results(header=[])
    assert "CPU budget" not in report.render(results)
    results.stages = report.Budget({"render": 0.3, "smtp": 0.2}, sent=1000, cpu=0.8)
    text = report.render(results)
    assert "(1,000 sent; all its processes; the stages count 0.50 of its 0.80 CPU s" in text
    assert "| render | 0.300 | 300 | 60% |" in text
    assert text.index("| target |") < text.index("CPU budget") < text.index("Checks")


def test_the_fleet_budget_shows_each_kind_of_process_then_the_server_and_the_sink() -> None:
    """The profiled fleet's stages per sent email for its planner and its deliverers, their start-up, then the
    server and the sink, all added up; nothing when the fleet did not run."""
    results = report.Results(header=[])
    assert "fleet, each of its processes" not in report.render(results)
    results.stages = report.Budget({"render": 0.3}, sent=1000, cpu=0.4)
    results.fleet_stages = report.FleetBudget({"plan": 0.1, "enqueue": 0.05}, {"render": 0.2, "smtp": 0.1},
                                              sent=1000, cpu={"planner": 0.2, "deliverers": 0.35, "server": 0.15},
                                              sink=0.05)
    text = report.render(results)
    assert "| plan | 100 | 0 | 100 |" in text and "| render | 0 | 200 | 200 |" in text
    assert "| claim |" not in text.split("fleet, each of its processes")[1]   # a stage neither counted
    assert "| start-up and exit | 50 | 50 | 100 |" in text
    assert "| their processes | 200 | 350 | 550 |" in text
    assert "| the server | | | 150 |" in text and "| the sink | | | 50 |" in text
    assert "| all | | | 750 |" in text
    run_budget = text.index("one more `dunning run --profile-stages`")
    fleet = text.index("fleet, each of its processes")
    assert run_budget < fleet < text.index("Checks")
    results.fleet_stages = report.FleetBudget({}, {"render": 0.2}, sent=1000, cpu={"deliverers": 0.2}, sink=None)
    assert "| the server | | | n/a |" in report.render(results)


def _row(key: str, phase: str, count: int, wall: float) -> report.Row:
    return report.Row(key, phase, count, "notices", (_run(wall, 100),))


def test_smtp_source_target_is_half_its_rate() -> None:
    """`dunning run` must reach half of smtp-source's rate: 0.49× fails, 0.5× passes."""
    for source_wall, ok in ((0.49, False), (0.5, True)):
        results = report.Results(header=[])
        results.rows += [_row(report.RUN, "`dunning run`, end to end", 1000, 1.0),
                         _row(report.SMTP_SOURCE, "smtp-source", 1000, source_wall)]
        verdicts = {t.what: t.ok for t in report.targets(results)}
        assert verdicts["`dunning run` ÷ smtp-source"] is ok


def test_the_postgresql_fleet_is_judged_against_the_sqlite_run_only_when_it_ran() -> None:
    """The fleet's rate must be at least 0.8× the single SQLite run's; without its row the target is not measured
    and does not fail the benchmark."""
    results = report.Results(header=[])
    results.rows.append(_row(report.RUN, "`dunning run`, end to end", 3000, 1.0))
    assert {t.what: t.ok for t in report.targets(results)}[report.FLEET_RATIO] is None
    assert report.exit_code(results) == 0   # the rate target (3,000/s) passes; the missing ratios fail nothing
    results.rows.append(_row(report.FLEET, "1 planner + 2 `dunning deliver`, PostgreSQL", 3000, 1.3))
    fleet = next(t for t in report.targets(results) if t.what == report.FLEET_RATIO)
    assert (fleet.measured, fleet.goal, fleet.ok) == ("0.77×", "≥ 0.8×", False)
    assert f"| {report.FLEET_RATIO} | 0.77× |" in report.render(results)
    results.rows[-1] = _row(report.FLEET, "1 planner + 2 `dunning deliver`, PostgreSQL", 3000, 1.25)
    assert {t.what: t.ok for t in report.targets(results)}[report.FLEET_RATIO] is True
