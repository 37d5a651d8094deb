"""The CPU budget per stage: counted only when asked, every stage present, adding up to the run's CPU."""

from __future__ import annotations

import json
import resource
import time

import pytest

from dunning.cli import main
from dunning.run import job
from dunning.run.stages import OFF, STAGES, StageClock, stage_clock, table
from dunning.settings import load_settings
from tests.run.conftest import AS_OF, AS_OF_TEXT, run

LINE = ("plan", "enqueue", "claim", "render", "mime", "sign", "smtp", "record")


def _cpu_of_processes() -> float:
    """CPU seconds of this process and of its children that have ended."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@pytest.mark.parametrize("workers", [1, 2])
def test_a_profiled_run_counts_every_stage_and_they_add_up_to_its_cpu(billing, smtp, monkeypatch, workers):
    """Each stage of the line is counted in a real run, none below zero, and together they are the CPU that
    the run's processes spent (the forked delivery process's counted in)."""
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", str(workers))
    settings = load_settings()
    before = _cpu_of_processes()
    summary = job.run(settings, as_of=AS_OF, profile=True)
    spent = _cpu_of_processes() - before
    assert summary.sent > 0 and summary.sent == len(smtp.messages)
    assert set(summary.stages) == set(STAGES)
    assert all(seconds >= 0 for seconds in summary.stages.values())
    assert all(summary.stages[stage] > 0 for stage in LINE), summary.stages
    counted = sum(summary.stages.values())
    assert counted <= spent
    assert counted == pytest.approx(spent, rel=0.05, abs=0.03)


def test_an_unprofiled_run_counts_nothing(billing, smtp):
    """Without profile the run holds the counters that count nothing, and its summary has no stages."""
    summary = job.run(load_settings(), as_of=AS_OF)
    assert summary.sent > 0
    assert summary.stages == {}
    assert "stages" not in summary.as_dict()


def test_dunning_run_prints_the_budget_per_sent_email(billing, smtp, capsys):
    """`--profile-stages` puts the stages in the JSON summary and a table of every stage on stderr."""
    capsys.readouterr()
    assert main(["run", "--json", "--profile-stages", "--as-of", AS_OF_TEXT]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert set(summary["stages"]) == set(STAGES)
    rows = [line.split("|")[1].strip() for line in captured.err.splitlines() if line.startswith("| ")]
    assert rows == ["stage", "---", *STAGES, "total"]


def test_without_the_option_the_json_summary_has_no_stages(billing, smtp, capsys):
    code, summary = run(capsys)
    assert code == 0 and summary["sent"] > 0
    assert "stages" not in summary


def test_the_clock_gives_each_lap_to_the_stage_it_closes():
    """A lap adds the CPU since the previous one to its stage; fresh counters start from zero; OFF counts nothing."""
    clock = StageClock()
    deadline = time.process_time() + 0.01
    while time.process_time() < deadline:
        pass
    clock.lap("render")
    clock.lap("mime")
    seconds = clock.seconds()
    assert seconds["render"] >= 0.01 and seconds["mime"] < seconds["render"]
    assert sum(clock.fresh().seconds().values()) == 0
    assert stage_clock(False) is OFF and OFF.fresh() is OFF
    OFF.lap("render")
    assert OFF.seconds() == {}


def test_the_table_shows_microseconds_per_sent_email():
    text = table({"render": 0.2, "smtp": 0.3}, 1000)
    assert "| render | 0.200 | 200 | 40% |" in text
    assert "| total | 0.500 | 500 | 100% |" in text
    assert "| plan | 0.000 | 0 | 0% |" in text


def test_a_run_that_only_plans_shows_its_budget_per_planned_email(billing, capsys):
    """`--no-deliver --profile-stages`: nothing is sent, so the table divides by the emails planned."""
    capsys.readouterr()
    assert main(["run", "--json", "--no-deliver", "--profile-stages", "--as-of", AS_OF_TEXT]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["sent"] == 0 and summary["planned"] > 0
    assert summary["stages"]["plan"] > 0 and summary["stages"]["render"] == 0
    assert "CPU µs per planned email" in captured.err and "n/a" not in captured.err


def test_dunning_deliver_counts_the_stages_of_delivery(billing, smtp, capsys):
    """`dunning deliver --profile-stages` after a run that only planned: delivery's stages are counted, the
    planner's are not (another process did them)."""
    capsys.readouterr()
    assert main(["run", "--no-deliver", "--json", "--as-of", AS_OF_TEXT]) == 0
    capsys.readouterr()
    assert main(["deliver", "--json", "--profile-stages"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["sent"] == len(smtp.messages) > 0
    spent = summary["stages"]
    assert all(spent[stage] > 0 for stage in ("claim", "render", "mime", "smtp", "record"))
    assert spent["plan"] == spent["enqueue"] == spent["sign"] == 0
    assert "CPU µs per sent email" in captured.err
