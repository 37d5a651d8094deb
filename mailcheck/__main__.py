"""`python -m mailcheck [--out DIR]`: spam scores, links, facts and browser checks of every preview email.

Exit 1 on any finding."""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from mailcheck import rspamd, spamassassin
from mailcheck.browser import check_pages
from mailcheck.emails import MailcheckEmail, sample_emails
from mailcheck.facts import check_facts
from mailcheck.links import check_links
from mailcheck.report import summary
from mailcheck.verdict import Verdict

REPO = Path(__file__).resolve().parents[1]
SENDER = "billing@example.com"
GTUBE = (b"From: test@example.com\r\nTo: test@example.com\r\nSubject: GTUBE\r\n\r\n"
         b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n")


def _recipient(email: MailcheckEmail) -> str:
    for line in email.eml.split(b"\r\n"):
        if line.lower().startswith(b"to:"):
            return line[3:].decode().strip()
    return "billing@example.org"


def require_spam_verdict(*verdicts: Verdict) -> None:
    """Both filters must flag the GTUBE test message: a filter that scores nothing checks nothing."""
    for verdict in verdicts:
        if verdict.score < 5:
            raise RuntimeError(f"{verdict.tool} did not flag the GTUBE test message "
                               f"({verdict.describe()}): its rules are not loaded")


def spam_verdicts(emails: list[MailcheckEmail], work: Path) -> dict[str, list[Verdict]]:
    """Each email's verdicts from SpamAssassin and rspamd, both started here and stopped after."""
    with ExitStack() as stack:
        work.chmod(0o755)   # spamd's children run as nobody when started by root
        (work / "sa").mkdir()
        (work / "rspamd").mkdir()
        port = stack.enter_context(spamassassin.running_spamd(work / "sa"))
        url = stack.enter_context(rspamd.running_rspamd(work / "rspamd"))

        def both(email: MailcheckEmail) -> list[Verdict]:
            return [spamassassin.scan(port, email.eml), rspamd.scan(url, email.eml, SENDER, _recipient(email),
                                                                   foreign_script_names=email.foreign_script_names)]

        require_spam_verdict(spamassassin.scan(port, GTUBE), rspamd.scan(url, GTUBE, SENDER, SENDER))
        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(zip((e.name for e in emails), pool.map(both, emails), strict=True))


def main(argv: list[str] | None = None) -> int:
    """Run every check, print and write the report; 0 when nothing was found, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="mailcheck", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "var" / "mailcheck",
                        help="where the report and screenshots go (default: var/mailcheck)")
    parser.add_argument("--no-browser", action="store_true", help="spam filters only")
    args = parser.parse_args(argv)
    emails = list(sample_emails(REPO / "templates" / "emails", REPO / "locales"))
    print(f"mailcheck: {len(emails)} emails (notice × locale × scenario)", flush=True)
    with tempfile.TemporaryDirectory(prefix="mailcheck-") as work:
        verdicts = spam_verdicts(emails, Path(work))
    links, found = check_links(emails)
    facts = check_facts(emails, REPO / "locales")
    pages, checked = ([], 0) if args.no_browser else check_pages(emails, args.out / "screenshots")
    text, failed = summary(verdicts, pages, checked, [(p.email, p.problem) for p in links], found,
                           [(p.email, p.problem) for p in facts])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.txt").write_text(text, encoding="utf-8")
    shown = text.splitlines()
    print("\n".join(shown[:60] + ([f"… {len(shown) - 60} more lines in {args.out / 'report.txt'}"]
                                  if len(shown) > 60 else [])))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
