"""The built package works with no checkout in sight: `dunning init`, `demo` and `lint` from a fresh install."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_environment(home: Path) -> dict[str, str]:
    """The environment without DUNNING_* or any path that could lead back to the checkout."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DUNNING_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` of the checkout: an sdist, and a wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)], cwd=out,
         env=dict(os.environ))
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("dunning-*.whl")
    return wheel


def test_build_makes_an_sdist_and_a_wheel_holding_every_default(dist: Path):
    """The wheel carries every template, scenario and catalog of the checkout, and the settings template."""
    assert list(dist.glob("dunning-*.tar.gz"))
    names = set(zipfile.ZipFile(_wheel(dist)).namelist())
    shipped = {f"dunning/defaults/templates/{p.relative_to(REPO / 'templates').as_posix()}"
               for p in (REPO / "templates").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    shipped |= {f"dunning/defaults/locales/{p.relative_to(REPO / 'locales').as_posix()}"
                for p in (REPO / "locales").rglob("*") if p.suffix in (".po", ".pot")}
    assert any(name.endswith(".json") and "/scenarios/" in name for name in shipped)
    assert shipped - names == set()
    assert {"dunning/defaults/settings.toml", "dunning/defaults/project/README.md"} <= names
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        assert wheel.read("dunning/defaults/settings.toml") == (REPO / "settings.toml").read_bytes()


def test_every_package_folder_is_listed_for_the_build():
    """pyproject.toml lists every folder of dunning/ as a package, so none is left out of the wheel."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "dunning").rglob("__init__.py")}
    assert folders <= listed
    assert {"dunning.defaults.templates", "dunning.defaults.locales"} <= listed


def test_every_folder_holding_files_is_a_listed_package():
    """Each folder of dunning/, templates/ and locales/ that holds a file is a package of the build, so
    setuptools has no data folder to warn about ("Package would be ignored")."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    roots = {"dunning": "dunning", "templates": "dunning.defaults.templates", "locales": "dunning.defaults.locales"}
    holding = {".".join((package, *path.parent.relative_to(REPO / folder).parts))
               for folder, package in roots.items() for path in (REPO / folder).rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    assert holding == listed


def test_a_fresh_install_inits_demos_and_lints_far_from_the_checkout(dist: Path, tmp_path: Path):
    """In a new virtual environment, `dunning init acme`, then `demo` and `lint` inside it, all exit 0."""
    venv, home = tmp_path / "venv", tmp_path / "home"
    home.mkdir()
    env = _clean_environment(home)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _run([str(venv / "bin" / "pip"), "install", "--quiet", str(_wheel(dist))], cwd=tmp_path, env=env)
    dunning = str(venv / "bin" / "dunning")
    where = _run([str(venv / "bin" / "python"), "-c", "import dunning; print(dunning.__file__)"], cwd=home, env=env)
    assert where.startswith(str(venv)) and str(REPO) not in where

    _run([dunning, "init", "acme"], cwd=home, env=env)
    project = home / "acme"
    out = _run([dunning, "demo", "--accounts", "12"], cwd=project, env=env)
    assert list((project / "var" / "outbox").glob("*.eml")) and (project / "var" / "preview" / "index.html").is_file()
    assert "dunning plan" in out
    assert "0 error(s)" in _run([dunning, "lint"], cwd=project, env=env)
    # Outside a project the packaged catalogs are used, and the translation workflow will not write into them.
    refused = subprocess.run([dunning, "i18n", "extract"], cwd=home, env=env, capture_output=True, text=True)
    assert refused.returncode == 78 and "dunning init" in refused.stderr
