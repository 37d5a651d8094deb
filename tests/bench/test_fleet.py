"""The fleet's benchmark (bench.fleet) sends every planned notice and tells what each of its processes spent."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # bench/ is run from the checkout (python -m bench), not installed

from bench import data, phases  # noqa: E402
from bench.sink import start_sink  # noqa: E402

AS_OF = "2026-12-07T14:00:00Z"


@pytest.mark.postgres
def test_the_fleet_reports_the_cpu_of_its_planner_each_deliverer_and_the_server(
        tmp_path: Path, postgres_url: str) -> None:
    """One planner and two deliverers on a few accounts: every planned notice reaches the sink once, and
    cpu_seconds holds the planner's, each deliverer's and (the server runs on this machine) the server's."""
    summary, received = _fleet(tmp_path, postgres_url)
    assert summary["sent"] == summary["planned"] == received > 0
    assert sum(summary["sent_by_each"]) == received
    cpu = summary["cpu_seconds"]
    assert cpu["planner"] > 0 and len(cpu["deliverers"]) == 2 and all(seconds > 0 for seconds in cpu["deliverers"])
    assert cpu["server"] is not None and cpu["server"] > 0


@pytest.mark.postgres
def test_a_profiled_fleet_tells_the_cpu_per_stage_of_its_planner_and_its_deliverers(
        tmp_path: Path, postgres_url: str) -> None:
    """With --profile-stages, `stages` holds the planner's planning and the deliverers' sending, added up."""
    summary, received = _fleet(tmp_path, postgres_url, "--profile-stages")
    assert summary["sent"] == received > 0
    planner, deliverers = summary["stages"]["planner"], summary["stages"]["deliverers"]
    assert planner["plan"] > 0 and planner["enqueue"] > 0 and not planner.get("render")
    assert deliverers["render"] > 0 and deliverers["smtp"] > 0 and not deliverers.get("plan")
    cpu = summary["cpu_seconds"]
    assert sum(planner.values()) <= cpu["planner"] and sum(deliverers.values()) <= sum(cpu["deliverers"])


def _fleet(tmp_path: Path, postgres_url: str, *options: str) -> tuple[dict, int]:
    """bench.fleet (one planner, two deliverers) over 40 due accounts imported into postgres_url: its summary,
    and how many messages the sink received."""
    with start_sink(tmp_path, prefer="python") as sink:
        env = {**phases.child_environment(REPO, sink, 4, 2, secrets.token_hex(32)),
               "DUNNING_DATABASE__URL": postgres_url}
        billing = data.billing_file(tmp_path / "due.jsonl", 40, mix="all-due", as_of=AS_OF, env=env, repo=REPO)
        subprocess.run(phases.dunning("import", str(billing), "--json"), env=env, cwd=REPO, check=True,
                       capture_output=True, timeout=300)
        done = subprocess.run([sys.executable, "-m", "bench.fleet", "--as-of", AS_OF, "--database", postgres_url,
                               *options], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        received = sink.count()
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), received
