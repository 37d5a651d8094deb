"""Deployment files: systemd units and a CronJob their validators accept, one schedule, real commands."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from yamllint import linter
from yamllint.config import YamlLintConfig

from dunning.cli import parse_arguments

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
CRONJOB = REPO / "deploy" / "kubernetes" / "cronjob.yaml"
INSTALLED = "/opt/dunning/bin/dunning"
SECRETS = ("DUNNING_LINKS__KEYS", "DUNNING_SMTP__PASSWORD")


def _unit(name: str) -> dict[str, list[str]]:
    """Every Key=value of a unit file, values listed in order."""
    found: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", ";")):
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _cronjob() -> dict:
    return yaml.safe_load(CRONJOB.read_text(encoding="utf-8"))


def _container() -> dict:
    return _cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must verify the systemd units: .ci/run installs Debian's systemd package")
        pytest.skip("needs systemd-analyze (Debian's systemd package)")
    return found


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path):
    """`systemd-analyze verify` accepts the services, the timer and the bounce path unit without a warning."""
    analyze = _systemd_analyze()
    dunning = Path(sys.executable).parent / "dunning"
    units = ("dunning.service", "dunning.timer", "dunning-bounces.service", "dunning-bounces.path")
    for unit in units:
        # verify checks that ExecStart's program exists: this environment's dunning stands in for /opt's.
        text = (SYSTEMD / unit).read_text(encoding="utf-8").replace(INSTALLED, str(dunning))
        (tmp_path / unit).write_text(text, encoding="utf-8")
    done = subprocess.run([analyze, "verify", *(str(tmp_path / unit) for unit in units)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_cronjob_matches_the_kubernetes_schema_strictly():
    """The CronJob validates against Kubernetes' own schema (unknown fields refused) and lints clean as YAML."""
    assert kubernetes_validate.validate(_cronjob(), latest_version(), strict=True)
    config = YamlLintConfig(file=str(REPO / ".yamllint.yaml"))
    assert [str(problem) for problem in linter.run(CRONJOB.read_text(encoding="utf-8"), config)] == []


def test_every_deployment_runs_on_the_same_schedule():
    """cron, the systemd timer and the CronJob all start a run every 15 minutes."""
    docs = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    cron_lines = re.findall(r"^(\S+ \S+ \S+ \S+ \S+) +\S+ +cd ", docs, flags=re.MULTILINE)
    assert cron_lines == ["*/15 * * * *"]
    assert _unit("dunning.timer")["OnCalendar"] == ["*:0/15"]
    assert _cronjob()["spec"]["schedule"] == "*/15 * * * *"


def test_the_commands_they_run_are_real_dunning_commands():
    """Every dunning command line in the units and the CronJob parses with dunning's own parser."""
    service, bounces = _unit("dunning.service"), _unit("dunning-bounces.service")
    lines = [shlex.split(value.lstrip("-")) for value in service["ExecStartPre"] + service["ExecStart"]
             + bounces["ExecStart"]]
    assert all(line[0] == INSTALLED for line in lines)
    commands = [line[1:] for line in lines] + [_container()["args"]]
    assert [parse_arguments(command).command for command in commands] == ["import", "run", "bounces", "run"]


def test_secrets_come_from_the_environment_never_from_the_files():
    """The unit reads secrets from an EnvironmentFile and the CronJob from a Secret; neither holds a value."""
    service = _unit("dunning.service")
    assert service["EnvironmentFile"] == ["/etc/dunning/secrets.env"]
    assert not any(name in value for value in service.get("Environment", []) for name in SECRETS)
    env = {item["name"]: item for item in _container()["env"]}
    assert all("secretKeyRef" in env[name]["valueFrom"] and "value" not in env[name] for name in SECRETS)


def test_the_run_is_confined_to_its_var_folder():
    """The service may write only the project's var/; the container runs as non-root on a read-only root."""
    service = _unit("dunning.service")
    assert service["ProtectSystem"] == ["strict"] and service["ReadWritePaths"] == ["/srv/dunning/var"]
    assert _container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert _cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
