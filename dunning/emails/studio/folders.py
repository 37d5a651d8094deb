"""The folders the studio may read, and the one way a URL turns into a file inside them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dunning.emails.scenarios import SCENARIOS_DIR

__all__ = ["AREAS", "READABLE_SUFFIXES", "Folders"]

AREAS = ("templates", "locales", "scenarios")
READABLE_SUFFIXES = frozenset({".mjml", ".txt", ".html", ".j2", ".jinja", ".po", ".pot", ".json"})


@dataclass(frozen=True, slots=True)
class Folders:
    """The templates, locales and scenarios folders, resolved once."""

    templates: Path
    locales: Path

    @classmethod
    def at(cls, templates_dir: Path, locales_dir: Path) -> Folders:
        """The folders, absolute and with symbolic links resolved."""
        return cls(Path(templates_dir).resolve(), Path(locales_dir).resolve())

    @property
    def scenarios(self) -> Path:
        return self.templates / SCENARIOS_DIR

    def root(self, area: str) -> Path | None:
        """The folder an area names, or None for any other name."""
        return {"templates": self.templates, "locales": self.locales, "scenarios": self.scenarios}.get(area)

    def readable(self, area: str, relative: str) -> Path | None:
        """The file `relative` names below the area's folder, or None when it is anywhere else.

        Refused: absolute paths, `..` anywhere, a symbolic link that leads out of the folder, a suffix
        that is not a template, catalog or scenario, a path that is not a regular file.
        """
        root = self.root(area)
        parts = PurePosixPath(relative).parts
        if root is None or not parts or relative.startswith(("/", "\\")) or ".." in parts or "\\" in relative:
            return None
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path.suffix not in READABLE_SUFFIXES or not path.is_file():
            return None
        return path

    def link(self, path: Path | str) -> tuple[str, str] | None:
        """(area, relative path) of a file inside one of the folders, the most specific first; else None."""
        resolved = Path(path).resolve()
        for area in ("scenarios", "templates", "locales"):
            root = self.root(area)
            assert root is not None
            if resolved.is_relative_to(root):
                return area, resolved.relative_to(root).as_posix()
        return None
