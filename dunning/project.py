"""`dunning init`: a company's own project folder, made from the packaged defaults."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from dunning import defaults
from dunning.errors import ProjectExistsError

__all__ = ["Planned", "plan_project", "create_project"]

# What is copied from a tree of defaults: never Python markers, caches or compiled catalogs.
SKIPPED = ("__init__.py", "__pycache__", "*.pyc", "*.mo")


@dataclass(frozen=True)
class Planned:
    """One file of the new project and where its content comes from (None: an empty file)."""

    target: Path
    source: Path | None


def plan_project(folder: Path) -> list[Planned]:
    """Every file `dunning init` writes into `folder`, in the order it writes them."""
    project = defaults.project_files()
    files = [Planned(folder / "settings.toml", defaults.settings_template()),
             Planned(folder / "README.md", project / "README.md"),
             Planned(folder / ".gitignore", project / "gitignore"),
             Planned(folder / "var" / ".gitkeep", None)]
    for source_root, target_root in ((defaults.templates_dir(), folder / "templates" / "emails"),
                                     (defaults.locales_dir(), folder / "locales")):
        files += [Planned(target_root / path.relative_to(source_root), path) for path in _tree(source_root)]
    return files


def create_project(folder: Path, *, force: bool = False) -> list[Planned]:
    """Write the project; refuses, before writing anything, when a file would be overwritten unless `force`."""
    files = plan_project(folder)
    existing = [planned.target for planned in files if planned.target.exists()]
    if existing and not force:
        shown = ", ".join(str(path) for path in existing[:3]) + (" …" if len(existing) > 3 else "")
        raise ProjectExistsError(f"{folder}: {len(existing)} of the files init writes exist already ({shown}); "
                                 "nothing was written. Choose an empty folder, or --force to overwrite them",
                                 folder=str(folder), existing=len(existing))
    for planned in files:
        planned.target.parent.mkdir(parents=True, exist_ok=True)
        if planned.source is None:
            planned.target.touch()
        else:
            shutil.copyfile(planned.source, planned.target)
    return files


def _tree(root: Path) -> list[Path]:
    """The files under root, less what SKIPPED names, sorted."""
    return sorted(path for path in root.rglob("*") if path.is_file() and not any(
        fnmatch(part, pattern) for part in path.relative_to(root).parts for pattern in SKIPPED))
