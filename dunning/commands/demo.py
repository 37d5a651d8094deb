"""dunning demo: sample billing state → import → run against a local capture server → what was sent."""

from __future__ import annotations

import argparse
import shlex
import shutil
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import Engine, select

from dunning import store
from dunning.billing import importer, sample
from dunning.commands.report import overall_line, write_report
from dunning.commands.run import print_summary, progress_reporter
from dunning.delivery.capture import CaptureServer
from dunning.emails.limits import RenderLimits
from dunning.emails.preview import build_preview
from dunning.report.build import build_report
from dunning.run import job
from dunning.serve import lookups
from dunning.settings import SegmentSettings, Settings, load_settings
from dunning.vocabulary import DUNNING_NOTICES

__all__ = ["NAME", "HELP", "DEMO_KEY", "configure", "run", "fresh", "demo_settings", "with_smtp_port",
           "load_settings_with", "show_outbox"]

NAME = "demo"
HELP = "run the whole job on sample data: SQLite under var/demo, a local capture SMTP server, var/outbox"
DEMO_KEY = "demo-signing-key-not-for-production"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=int, default=60, help="sample accounts to generate (default 60)")
    parser.add_argument("--var", type=Path, default=Path("var"), help="working directory (default var/)")


def run(args: argparse.Namespace) -> int:
    var: Path = args.var
    fresh(var)
    settings = demo_settings(load_settings(args.settings), var)
    # Midday UTC today: most of the sample's time zones (Europe, Africa, the Americas' east) are inside
    # the send window, so the demo shows many languages whatever the hour it is run at.
    as_of = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    state_file = var / "sample" / "billing.jsonl"
    with state_file.open("w", encoding="utf-8") as out:
        sample.write_jsonl(out, sample.generate(args.accounts, as_of))
    engine = store.connect(settings.database.url)
    with state_file.open("rb") as stream:
        imported = importer.import_stream(engine, stream, batch_size=settings.database.batch_size)
    print(f"dunning demo, deciding as of {as_of.isoformat()}")
    print(f"1. sample billing state: {state_file} ({imported.imported} accounts imported into "
          f"{settings.database.url})")
    with CaptureServer(var / "outbox", port=0) as server:
        settings = with_smtp_port(settings, server.port)
        print(f"2. capture SMTP server on {server.host}:{server.port}, writing to {var / 'outbox'}/")
        with progress_reporter(enabled=True) as progress:
            first = job.run(settings, as_of=as_of, progress=progress)
        print("3. dunning run:  ", end="")
        print_summary(first, as_json=False)
        again = job.run(settings, as_of=as_of)
        print(f"4. the same run again sends nothing new (never twice): {again.sent} sent")
        clicked = _links_followed(engine, as_of + timedelta(minutes=10))
        settled = _payments_arrive(engine, settings, args.accounts, as_of, var)
        print(f"5. {clicked} customers follow their email's link, payments arrive for {settled.updated} accounts; "
              "an hour later, dunning run: ", end="")
        print_summary(settled_run := job.run(settings, as_of=as_of + timedelta(hours=1)), as_json=False)
        server.wait_for(first.sent + settled_run.sent)
    show_outbox(var / "outbox")
    entries = build_preview(Path(settings.i18n.templates_dir), Path(settings.i18n.locales_dir), var / "preview",
                            sender=settings.sender, default_locale=settings.i18n.default_locale,
                            limits=RenderLimits.of(settings))
    print(f"6. preview gallery of {len(entries)} emails (every notice × locale × scenario): "
          f"{var / 'preview' / 'index.html'}")
    _report(engine, settings, var / "report.html")
    print("\nLook at what it did:")
    for line in next_steps(settings.database.url, as_of, var):
        print(f"  {line}")
    return first.exit_code()


def _payments_arrive(engine: Engine, settings: Settings, accounts: int, as_of: datetime,
                     var: Path) -> importer.ImportSummary:
    """Import the sample once its settling situations are paid: their groups get balance_settled."""
    paid_file = var / "sample" / "billing-settled.jsonl"
    with paid_file.open("w", encoding="utf-8") as out:
        sample.write_jsonl(out, sample.generate(accounts, as_of, settled=True))
    with paid_file.open("rb") as stream:
        # Paid half an hour after the emails: the balance history dates the settlements then.
        return importer.import_stream(engine, stream, batch_size=settings.database.batch_size,
                                      as_of=as_of + timedelta(minutes=30))


def _links_followed(engine: Engine, at: datetime) -> int:
    """Every other dunning email's link followed, as `dunning serve` records it: the report shows clicks."""
    notices, emails = store.notices, store.emails
    with engine.connect() as conn:
        sent = conn.execute(select(notices.c.key, notices.c.email_id)
                            .join(emails, emails.c.id == notices.c.email_id)
                            .where(emails.c.status == "sent", notices.c.notice.in_(DUNNING_NOTICES))
                            .order_by(notices.c.email_id)).all()[::2]
    for key, email_id in sent:
        lookups.record_click(engine, key=key, email_id=email_id, purpose="settlement", at=at)
    return len(sent)


def _report(engine: Engine, settings: Settings, out: Path) -> None:
    """The recovery report over the demo's own emails, as HTML."""
    report = build_report(engine, window_days=settings.report.window_days)
    write_report(report, "html", out)
    overall = overall_line(report["overall"])
    print(f"7. recovery report ({overall}): {out}")


def next_steps(database_url: str, as_of: datetime, var: Path) -> list[str]:
    """The commands that show the demo's plan, its preview gallery and one email it sent."""
    emails = sorted((var / "outbox").glob("*.eml"))
    # At the demo's own moment every notice is handled already: a week later, the next stages fall due.
    later = (as_of + timedelta(days=7)).isoformat()
    steps = [f"DUNNING_DATABASE__URL={shlex.quote(database_url)} dunning plan --as-of {later}"
             "   # the demo's database, a week later: what the next run would send",
             f"xdg-open {shlex.quote(str(var / 'preview' / 'index.html'))}"
             "   # every notice, locale and scenario, in a browser"]
    if emails:
        steps.append(f"less {shlex.quote(str(emails[0]))}   # one email as the SMTP server received it")
    return steps


def fresh(var: Path) -> None:
    """Start from an empty demo database and outbox (never touching the real store)."""
    shutil.rmtree(var / "demo", ignore_errors=True)
    shutil.rmtree(var / "outbox", ignore_errors=True)
    for path in (var / "demo", var / "outbox", var / "sample"):
        path.mkdir(parents=True, exist_ok=True)


def demo_settings(settings: Settings, var: Path) -> Settings:
    """The embedded defaults with the demo's own database and a demo signing key when none is set."""
    if not settings.links.key_list:
        print("note: DUNNING_LINKS__KEYS is not set; the demo signs its links with a throwaway demo key")
        settings = load_settings_with(settings, "links", keys=SecretStr(DEMO_KEY))
    settings = load_settings_with(settings, "database", url=f"sqlite:///{var / 'demo' / 'dunning.sqlite3'}")
    if settings.knows_segment(sample.SEGMENT):
        return settings
    # The sample's own segment takes the defaults without a warning: the demo shows the settings as shipped.
    return settings.model_copy(update={"segments": {**settings.segments, sample.SEGMENT: SegmentSettings()}})


def with_smtp_port(settings: Settings, port: int) -> Settings:
    """The settings pointing at the capture server's port."""
    return load_settings_with(settings, "smtp", host="127.0.0.1", port=port, tls="none")


def load_settings_with(settings: Settings, section: str, **values: object) -> Settings:
    """A copy of the settings with some values of one section replaced."""
    replaced = getattr(settings, section).model_copy(update=values)
    return settings.model_copy(update={section: replaced})


def show_outbox(outbox: Path) -> None:
    """A few lines of what the capture server received."""
    files = sorted(outbox.glob("*.eml"))
    print(f"   {len(files)} messages in {outbox}/, for example:")
    parser = BytesHeaderParser()
    for path in files[:8]:
        with path.open("rb") as handle:
            headers = parser.parse(handle)
        subject = " ".join(str(make_header(decode_header(headers.get("Subject", "")))).split())
        print(f"     {headers.get('Content-Language', '?'):6} {headers.get('To', ''):32.32} {subject}")
