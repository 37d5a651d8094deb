"""What the studio shows: the emails of one notice × scenario in every locale, their lint findings, the catalogs.

Every method returns plain data for the page; a broken template, catalog or scenario becomes an error in
that data, never an exception out of the studio.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dunning.emails.limits import DEFAULT_LIMITS, RenderLimits, SlowNotices
from dunning.emails.lint import Problem
from dunning.emails.lint_tree import lint_tree
from dunning.emails.render import RenderedEmail, Renderer
from dunning.emails.scenarios import Scenario, load_scenario
from dunning.emails.studio.folders import Folders
from dunning.emails.studio.translations import translation_status
from dunning.errors import DunningError
from dunning.i18n import workflow
from dunning.vocabulary import NOTICES

__all__ = ["ScenarioEntry", "Workbench"]


@dataclass(frozen=True, slots=True)
class ScenarioEntry:
    """A scenario file: its name and notice, or why it cannot be read."""

    name: str
    path: Path
    scenario: Scenario | None
    error: str | None = None

    @property
    def notice(self) -> str:
        return self.scenario.notice if self.scenario else self.name.partition("--")[0]


class Workbench:
    """Renders from the live template and catalog files, within limits; one lock, since a Renderer is not
    thread-safe."""

    def __init__(self, folders: Folders, default_locale: str = "en", limits: RenderLimits = DEFAULT_LIMITS) -> None:
        self.folders = folders
        self.default_locale = default_locale
        self.limits = limits
        self._lock = threading.Lock()
        self._renderer: Renderer | None = None
        self._lint_lock = threading.Lock()
        self._version = 0   # bumped by each batch of saved files
        self._linted: tuple[int, list[Problem]] | None = None
        self._counted: tuple[int, list[dict[str, Any]]] | None = None
        self._count_lock = threading.Lock()

    def changed(self) -> None:
        """Files were saved: the next lint runs afresh (rendering needs nothing, its stamps tell it)."""
        self._version += 1

    def forget(self) -> None:
        """Start from a new Renderer: files were added or removed (a Renderer knows its locales once)."""
        with self._lock:
            self._renderer = None

    def renderer(self) -> Renderer:
        """The Renderer; reload_interval=0, so each render checks its files' stamps and re-reads what changed."""
        if self._renderer is None:
            self._renderer = self.limits.renderer(self.folders.templates, self.folders.locales,
                                                  self.default_locale, reload_interval=0)
        return self._renderer

    def scenarios(self) -> list[ScenarioEntry]:
        """Every scenario file, in notice order, broken ones included."""
        entries = []
        for path in sorted(self.folders.scenarios.glob("*.json")):
            try:
                entries.append(ScenarioEntry(path.stem, path, load_scenario(path)))
            except DunningError as exc:
                entries.append(ScenarioEntry(path.stem, path, None, exc.message))
        order = {notice: n for n, notice in enumerate(NOTICES)}
        return sorted(entries, key=lambda e: (order.get(e.notice, len(order)), e.name))

    def index(self) -> dict[str, Any]:
        """The sidebar: each scenario under its notice, and the locales."""
        try:
            with self._lock:
                locales = sorted(self.renderer().available_locales)
            error = None
        except DunningError as exc:
            locales, error = [], exc.message
        scenarios = [{"name": e.name, "notice": e.notice, "error": e.error,
                      "description": e.scenario.description if e.scenario else ""} for e in self.scenarios()]
        return {"locales": locales, "scenarios": scenarios, "error": error}

    def find(self, name: str) -> ScenarioEntry | None:
        """The scenario of that name, read afresh."""
        return next((entry for entry in self.scenarios() if entry.name == name), None)

    def render(self, entry: ScenarioEntry, locale: str, slow: SlowNotices | None = None) -> RenderedEmail:
        """One email of a readable scenario, from the files as they are now (through slow when given: a notice
        that ran out of time there is not rendered again)."""
        assert entry.scenario is not None
        with self._lock:
            renderer = slow if slow is not None else self.renderer()
            return renderer.render(entry.scenario.notice, locale, entry.scenario.context)

    def view(self, name: str) -> dict[str, Any]:
        """The scenario's email in every locale, each rendered or the error that stopped it."""
        entry = self.find(name)
        if entry is None:
            return {"error": f"no scenario {name!r} in {workflow.display_path(self.folders.scenarios)}"}
        if entry.scenario is None:
            return {"scenario": name, "error": entry.error, "source": self.source(entry.path)}
        try:
            with self._lock:
                renderer = self.renderer()
                locales = sorted(renderer.available_locales)
        except DunningError as exc:
            return {"scenario": name, "error": exc.message}
        slow = SlowNotices(renderer)   # a template out of time fails the other locales at once
        return {"scenario": name, "notice": entry.notice, "description": entry.scenario.description,
                "emails": [self._email(entry, locale, slow) for locale in locales]}

    def _email(self, entry: ScenarioEntry, locale: str, slow: SlowNotices) -> dict[str, Any]:
        try:
            email = self.render(entry, locale, slow)
        except DunningError as exc:
            template, line = exc.context.get("template"), exc.context.get("line")
            where = self._template_path(str(template)) if template else None
            return {"locale": locale, "error": exc.message,
                    "source": self.source(where, line if isinstance(line, int) else None) if where else None}
        except Exception as exc:  # a bug in a filter or the renderer: shown in the page, the studio goes on
            return {"locale": locale, "error": f"rendering crashed: {type(exc).__name__}: {exc}", "source": None}
        return {"locale": email.locale, "lang": email.lang, "dir": email.dir, "subject": email.subject,
                "preheader": email.preheader, "html": email.html, "text": email.text}

    def _template_path(self, template: str) -> Path:
        path = Path(template)
        return path if path.is_absolute() else self.folders.templates / path

    def source(self, path: Path | None, line: int | None = None) -> str | None:
        """The studio's URL of a file (at a line), or None when it lies outside the folders it may show."""
        link = self.folders.link(path) if path else None
        if link is None:
            return None
        return f"/source/{link[0]}/{link[1]}" + (f"#L{line}" if line else "")

    def lint(self, name: str) -> list[dict[str, Any]]:
        """`dunning lint`'s findings in the files the scenario's email is made of, its catalogs and the scenario."""
        entry = self.find(name)
        problems = self._lint_tree()
        relevant = self._files_of(entry) if entry else None
        return [self._problem(p) for p in problems if relevant is None or self._concerns(p, relevant)]

    def _lint_tree(self) -> list[Problem]:
        """lint_tree's findings, run once per batch of saved files however many pages ask."""
        with self._lint_lock:
            version = self._version
            if self._linted is None or self._linted[0] != version:
                self._linted = (version, lint_tree(self.folders.templates, self.folders.locales,
                                                   default_locale=self.default_locale, limits=self.limits))
            return self._linted[1]

    def _files_of(self, entry: ScenarioEntry) -> set[Path] | None:
        """The files behind the email, or None (everything) when its notice does not even compile."""
        try:
            with self._lock:
                files: Iterable[Path] = self.renderer().compile(entry.notice).files
        except DunningError:
            return None
        catalogs = workflow.catalog_paths(self.folders.locales).values()
        return {path.resolve() for path in (*files, *catalogs, entry.path,
                                            self.folders.locales / workflow.POT_NAME)}

    @staticmethod
    def _concerns(problem: Problem, files: set[Path]) -> bool:
        return Path(problem.file).resolve() in files

    def _problem(self, problem: Problem) -> dict[str, Any]:
        return {"text": str(problem), "severity": problem.severity,
                "source": self.source(Path(problem.file), problem.line)}

    def translations(self) -> list[dict[str, Any]]:
        """Each locale's counts, with links to its fuzzy and missing messages (once per batch of saved files)."""
        with self._count_lock:
            version = self._version
            if self._counted is None or self._counted[0] != version:
                self._counted = (version, self._translations())
            return self._counted[1]

    def _translations(self) -> list[dict[str, Any]]:
        return [{"locale": s.locale, "translated": s.translated, "fuzzy": s.fuzzy, "missing": s.missing,
                 "error": s.error,
                 "untranslated": [{"msgid": u.msgid, "fuzzy": u.fuzzy, "source": self.source(u.path, u.line)}
                                  for u in s.untranslated]}
                for s in translation_status(self.folders.locales, self.folders.templates)]
