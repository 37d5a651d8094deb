"""An offline gallery of every notice × locale × sample scenario, with one .eml per email."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dunning.delivery.mime import address_domain, build_message, make_message_id
from dunning.emails.limits import DEFAULT_LIMITS, RenderLimits, SlowNotices
from dunning.emails.render import Renderer
from dunning.emails.scenarios import load_scenarios
from dunning.errors import DunningError
from dunning.settings import SenderSettings
from dunning.vocabulary import NOTICES

__all__ = ["Entry", "build_preview", "stem_for", "gallery_html"]

DESKTOP_WIDTH, MOBILE_WIDTH, FRAME_HEIGHT = 640, 375, 760


@dataclass(frozen=True, slots=True)
class Entry:
    """One email of the gallery: where its files are (relative to the gallery) or why it failed."""

    notice: str
    locale: str
    scenario: str
    subject: str = ""
    preheader: str = ""
    text: str = ""
    lang: str = ""
    dir: str = "ltr"
    stem: str = ""      # files are stem + .html / .txt / .eml
    error: str | None = None


def build_preview(templates_dir: Path, locales_dir: Path, out_dir: Path, *, sender: SenderSettings,
                  default_locale: str = "en", date: datetime | None = None,
                  limits: RenderLimits = DEFAULT_LIMITS) -> list[Entry]:
    """Render every sample scenario in every locale into out_dir and write out_dir/index.html, each email
    within limits (the Renderer's defaults unless given)."""
    renderer = limits.renderer(templates_dir, locales_dir, default_locale)
    slow = SlowNotices(renderer)
    date = date or datetime.now(UTC).replace(microsecond=0)
    order = {notice: index for index, notice in enumerate(NOTICES)}
    scenarios = sorted(load_scenarios(templates_dir), key=lambda s: (order.get(s.notice, len(order)), s.name))
    entries = [_write_email(slow, out_dir, scenario.notice, locale, scenario.name, scenario.context,
                            sender, date)
               for scenario in scenarios for locale in sorted(renderer.available_locales)]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "index.html").write_text(gallery_html(entries), encoding="utf-8")
    return entries


def _write_email(renderer: Renderer | SlowNotices, out_dir: Path, notice: str, locale: str, scenario: str,
                 context: dict[str, Any], sender: SenderSettings, date: datetime) -> Entry:
    stem = stem_for(notice, locale, scenario)
    try:
        email = renderer.render(notice, locale, context)
        eml = build_message(email, from_address=sender.from_address, from_name=sender.from_name,
                            reply_to=sender.reply_to, to=[context["account"]["email"]], cc=[],
                            message_id=make_message_id(f"preview:{stem}", address_domain(sender.from_address)),
                            date=date)
    except DunningError as exc:
        return Entry(notice, locale, scenario, error=str(exc))
    base = out_dir / stem
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".html").write_text(email.html, encoding="utf-8")
    base.with_suffix(".txt").write_text(email.text, encoding="utf-8")
    base.with_suffix(".eml").write_bytes(eml)
    return Entry(notice, locale, scenario, email.subject, email.preheader, email.text, email.lang,
                 email.dir, stem)


def stem_for(notice: str, locale: str, scenario: str) -> str:
    """Where an email's files go, relative to the gallery: emails/<notice>/<locale>/<scenario>."""
    return f"emails/{_slug(notice)}/{_slug(locale)}/{_slug(scenario)}"


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip(".-") or "_"


# -- the gallery page ---------------------------------------------------------------------------

def gallery_html(entries: list[Entry]) -> str:
    """The index page: every value escaped, emails shown in sandboxed frames, no network needed."""
    notices = list(dict.fromkeys(entry.notice for entry in entries))
    nav = " · ".join(f'<a href="#{_attr(n)}">{escape(n)}</a>' for n in notices)
    failed = sum(1 for entry in entries if entry.error)
    sections = []
    for notice in notices:
        cards = "\n".join(_card(entry) for entry in entries if entry.notice == notice)
        sections.append(f'<section id="{_attr(notice)}"><h2>{escape(notice)}</h2>\n{cards}\n</section>')
    summary = f"{len(entries)} emails" + (f", {failed} failed" if failed else "")
    return _PAGE.format(summary=escape(summary), nav=nav, sections="\n".join(sections),
                        desktop=DESKTOP_WIDTH, mobile=MOBILE_WIDTH, height=FRAME_HEIGHT)


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _card(entry: Entry) -> str:
    title = f"{escape(entry.locale)} · {escape(entry.scenario)}"
    if entry.error:
        return f'<article class="card failed"><h3>{title}</h3><pre class="error">{escape(entry.error)}</pre></article>'
    href = {suffix: _attr(quote(entry.stem + suffix)) for suffix in (".html", ".txt", ".eml")}
    lang, direction = _attr(entry.lang), _attr(entry.dir)
    frame = ('<figure><figcaption>{label} ({width}px)</figcaption><iframe src="{src}" width="{width}" '
             'height="{height}" loading="lazy" sandbox="allow-popups allow-popups-to-escape-sandbox" '
             'title="{label}: {subject}"></iframe></figure>')
    frames = "".join(frame.format(label=label, width=width, height=FRAME_HEIGHT, src=href[".html"],
                                  subject=_attr(entry.subject))
                     for label, width in (("desktop", DESKTOP_WIDTH), ("mobile", MOBILE_WIDTH)))
    return (f'<article class="card" id="{_attr(entry.stem)}"><h3>{title}</h3>'
            f'<p class="subject"><b>Subject:</b> <span lang="{lang}" dir="{direction}">'
            f'{escape(entry.subject)}</span></p>'
            f'<p class="preheader"><b>Preheader:</b> <span lang="{lang}" dir="{direction}">'
            f'{escape(entry.preheader)}</span></p>'
            f'<p class="files"><a href="{href[".eml"]}">.eml</a> · <a href="{href[".html"]}">HTML</a> · '
            f'<a href="{href[".txt"]}">text</a></p>'
            f'<div class="views">{frames}<figure><figcaption>text</figcaption>'
            f'<pre class="text" lang="{lang}" dir="{direction}">{escape(entry.text)}</pre></figure></div>'
            f'</article>')


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Email preview</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem 2rem; background: #f4f4f5; color: #18181b; }}
.card {{ background: #fff; border: 1px solid #d4d4d8; border-radius: 6px; padding: .5rem 1rem 1rem;
  margin: 1rem 0; }}
.failed {{ border-color: #dc2626; }}
.error {{ color: #b91c1c; white-space: pre-wrap; }}
.views {{ display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }}
figure {{ margin: 0; }}
figcaption {{ font-size: .8rem; color: #52525b; }}
iframe {{ border: 1px solid #a1a1aa; background: #fff; }}
.text {{ width: {mobile}px; height: {height}px; overflow: auto; white-space: pre-wrap; margin: 0;
  border: 1px solid #a1a1aa; padding: .5rem; font-size: .8rem; background: #fafafa; }}
</style></head>
<body><h1>Email preview</h1><p>{summary}: {nav}</p>
{sections}
</body></html>
"""
