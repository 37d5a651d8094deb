"""What the phases need before anything is measured: the baselines' templates and sample contexts,
and a message of the pipeline's own size for smtp-source. Built with the project's public API.
"""

from __future__ import annotations

import pickle
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dunning.delivery.mime import build_message, make_message_id
from dunning.emails.render import Renderer
from dunning.emails.scenarios import load_scenarios
from dunning.settings import Settings
from dunning.vocabulary import NOTICES

FLAT_PARTS = {"html": "html", "text": "txt", "subject": "subject", "preheader": "preheader"}


@dataclass(frozen=True, slots=True)
class Prepared:
    """Files in the work directory, and the sizes they were chosen by."""

    flat_dir: Path          # <notice>.html (MJML compiled once), .txt, .subject, .preheader: Jinja sources
    templates_dir: Path     # the notices' MJML + Jinja sources
    contexts: Path          # pickled [(notice, render context)] for the baselines
    context_count: int
    message_file: Path      # one of the pipeline's messages, of mean size, LF line endings (smtp-source -F)
    message_bytes: int      # its size on the wire (CRLF)
    mean_bytes: float       # the mean size of the pipeline's messages over every scenario and locale


def prepare(settings: Settings, repo: Path, workdir: Path) -> Prepared:
    """Write the baselines' inputs and smtp-source's message into workdir."""
    templates_dir = _resolve(repo, settings.i18n.templates_dir)
    renderer = Renderer(templates_dir, _resolve(repo, settings.i18n.locales_dir), settings.i18n.default_locale)
    scenarios = [s for s in load_scenarios(templates_dir) if s.notice in NOTICES]
    if not scenarios:
        raise RuntimeError(f"no scenarios in {templates_dir / 'scenarios'}: the baselines need sample contexts")
    flat_dir = workdir / "flat"
    write_flat_templates(renderer, sorted({s.notice for s in scenarios}), flat_dir)
    contexts = workdir / "contexts.pickle"
    contexts.write_bytes(pickle.dumps([(s.notice, s.context) for s in scenarios]))
    messages = pipeline_messages(renderer, settings, scenarios)
    mean = statistics.fmean(len(m) for m in messages)
    chosen = min(messages, key=lambda m: abs(len(m) - mean))
    message_file = workdir / "smtp-source.eml"
    message_file.write_bytes(chosen.replace(b"\r\n", b"\n"))
    return Prepared(flat_dir, templates_dir, contexts, len(scenarios), message_file, len(chosen), mean)


def write_flat_templates(renderer: Renderer, notices: list[str], out: Path) -> None:
    """Each notice's Jinja sources with its MJML compiled to HTML once (the baselines' build step)."""
    out.mkdir(parents=True, exist_ok=True)
    for notice in notices:
        compiled = renderer.compile(notice)
        for part, suffix in FLAT_PARTS.items():
            (out / f"{notice}.{suffix}").write_text(getattr(compiled, part).text, encoding="utf-8")


def pipeline_messages(renderer: Renderer, settings: Settings, scenarios: list) -> list[bytes]:
    """The pipeline's message for every scenario in every locale with a catalog, as `dunning run` sends it."""
    sender, now = settings.sender, datetime.now(UTC)
    messages = []
    for locale in sorted(renderer.available_locales):
        for scenario in scenarios:
            email = renderer.render(scenario.notice, locale, scenario.context)
            message_id = make_message_id(f"bench:{scenario.name}:{locale}", "example.com")
            messages.append(build_message(email, from_address=sender.from_address, from_name=sender.from_name,
                                          reply_to=sender.reply_to, to=[scenario.context["account"]["email"]],
                                          cc=[], message_id=message_id, date=now,
                                          eight_bit=settings.smtp.eight_bit))  # both sinks announce 8BITMIME
    return messages


def _resolve(repo: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else repo / candidate
