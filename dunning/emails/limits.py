"""The render limits every command that renders takes from the settings: time per email and size per part.

`dunning run`, `lint`, `preview` and the studio render with the same i18n.render_seconds and
delivery.max_message_bytes. A notice that ran out of time once is not rendered again in the same pass
(each email of it would take as long); a run renders each notice's sample scenarios before it writes
anything, so that a template past a limit is refused up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dunning.errors import EmailTooLarge, RenderTooSlow, ScenarioError, TemplateError
from dunning.settings import Settings

if TYPE_CHECKING:
    from dunning.emails.render import RenderedEmail, Renderer

__all__ = ["DEFAULT_LIMITS", "RenderLimits", "SlowNotices", "refuse_over_limits"]


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """The longest an email may take to render, and the most characters one of its parts may have (None: the
    Renderer's defaults); and whether numbers are written in Latin digits whatever the locale, so that every
    command renders the emails a run sends."""

    render_seconds: float | None = None
    max_output: int | None = None
    latin_digits: bool = False

    @classmethod
    def of(cls, settings: Settings) -> RenderLimits:
        """The limits the settings give (i18n.render_seconds, delivery.max_message_bytes, i18n.latin_digits)."""
        return cls(settings.i18n.render_seconds, settings.delivery.max_message_bytes, settings.i18n.latin_digits)

    def renderer(self, templates_dir: Path, locales_dir: Path, default_locale: str = "en",
                 **options: Any) -> Renderer:
        """A Renderer held to these limits."""
        from dunning.emails.render import Renderer  # the renderer's imports are heavy; commands load it late

        if self.render_seconds is not None:
            options["render_seconds"] = self.render_seconds
        return Renderer(templates_dir, locales_dir, default_locale, max_output=self.max_output,
                        latin_digits=self.latin_digits, **options)


DEFAULT_LIMITS = RenderLimits()


@dataclass(slots=True)
class SlowNotices:
    """Renders through a Renderer, remembering the notices that ran out of time: those raise again at once."""

    renderer: Renderer
    stopped: dict[str, RenderTooSlow] = field(default_factory=dict)

    def render(self, notice: str, locale: str, context: Mapping[str, Any]) -> RenderedEmail:
        """renderer.render, or the notice's earlier RenderTooSlow without rendering it again."""
        earlier = self.stopped.get(notice)
        if earlier is not None:
            raise RenderTooSlow(earlier.message, template=earlier.template, locale=earlier.locale)
        try:
            return self.renderer.render(notice, locale, context)
        except RenderTooSlow as exc:
            self.stopped[notice] = exc
            raise


def refuse_over_limits(renderer: Renderer, templates_dir: Path, locale: str) -> None:
    """Render each notice's sample scenarios in one locale: raise RenderTooSlow or EmailTooLarge when one
    passes a limit. Other render errors are lint's to report; without readable scenarios, nothing is tried."""
    from dunning.emails.scenarios import load_scenarios

    try:
        scenarios = load_scenarios(templates_dir)
    except ScenarioError:
        return
    for scenario in scenarios:
        try:
            renderer.render(scenario.notice, locale, scenario.context)
        except (RenderTooSlow, EmailTooLarge):
            raise
        except TemplateError:  # a scenario that does not fit its template: lint's to report, not a limit
            continue
