"""The script a team would hand-roll in an afternoon, run as its own process so it is measured alone.

Per message: plain Jinja2 render of the notice's templates, email.message.EmailMessage with a text
and an HTML part, and smtplib.SMTP.send_message over one reused connection. No plan, no ledger,
no signed links, no translations: strictly less work than `dunning run` does per notice.

    precompiled: the HTML template was compiled from MJML once, beforehand (as a build step would)
    mjml:        the naive use: the notice's MJML is rendered with Jinja and compiled by mjml per message

    python -m bench.baseline --mode precompiled --messages 10000 --port 2525 \
        --flat DIR --templates templates/emails --contexts contexts.pickle

Prints one JSON object: {"messages": sent, "refused": refused}.
"""

from __future__ import annotations

import argparse
import json
import pickle
import smtplib
from collections.abc import Callable, Iterable, Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

FROM_ADDRESS, FROM_NAME, REPLY_TO = "billing@example.com", "Example Cloud Billing", "support@example.com"
CONSTANTS = {"lang": "en", "dir": "ltr", "start": "left", "end": "right", "locale": "en"}


def money(amount: Any, currency: str) -> str:
    """1234.5, "EUR" → "1,234.50 EUR"."""
    return f"{amount:,.2f} {currency}"


def amounts(balance: Iterable[Mapping[str, Any]]) -> str:
    """Every currency of a balance, joined."""
    return " and ".join(money(item["amount"], item["currency"]) for item in balance)


def names(items: Iterable[Any]) -> str:
    """Subscription names, joined."""
    return ", ".join(item if isinstance(item, str) else item["name"] for item in items)


FILTERS: dict[str, Callable[..., Any]] = {
    "money": money, "amounts": amounts, "names": names, "bidi": lambda value: value, "ltr": lambda value: value,
    "link": lambda value: value, "number": lambda value: f"{value:,}",
    "date": lambda value, format="long": value.strftime("%B %d, %Y"),
    "datetime": lambda value, format="long": value.strftime("%B %d, %Y %H:%M %Z"),
    "card_brand": lambda brand: (brand or "").title(),
    "unit_words": lambda value: markupsafe.Markup(" ".join(f'<span class="unit">{markupsafe.escape(word)}</span>'
                                                           for word in value.split())),
}


def environment(flat: Path, templates: Path) -> jinja2.Environment:
    """A plain Jinja2 environment: autoescaped HTML, gettext that returns the English text."""
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(flat), jinja2.FileSystemLoader(templates)])
    env = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html", "mjml"]),
                             extensions=["jinja2.ext.i18n"], lstrip_blocks=True)
    env.policies["ext.i18n.trimmed"] = True
    env.install_null_translations(newstyle=True)
    env.filters.update(FILTERS)
    env.globals.update(CONSTANTS)
    return env


def html_renderer(env: jinja2.Environment, mode: str) -> Callable[[str, dict], str]:
    """notice, variables → HTML, the way each baseline gets it."""
    if mode == "precompiled":
        return lambda notice, variables: env.get_template(f"{notice}.html").render(variables)
    from mjml import mjml_to_html

    return lambda notice, variables: mjml_to_html(env.get_template(f"{notice}.mjml").render(variables)).html


def compose(env: jinja2.Environment, html: Callable[[str, dict], str], notice: str,
            context: Mapping[str, Any]) -> EmailMessage:
    """One notice as an EmailMessage with a text and an HTML alternative."""
    variables = dict(context)
    variables["subject"] = " ".join(env.get_template(f"{notice}.subject").render(variables).split())
    variables["preheader"] = " ".join(env.get_template(f"{notice}.preheader").render(variables).split())
    message = EmailMessage()
    message["Subject"] = variables["subject"]
    message["From"] = formataddr((FROM_NAME, FROM_ADDRESS))
    message["To"] = context["account"]["email"]
    message["Reply-To"] = REPLY_TO
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(env.get_template(f"{notice}.txt").render(variables))
    message.add_alternative(html(notice, variables), subtype="html")
    return message


def run(args: argparse.Namespace) -> dict[str, int]:
    """Send args.messages notices, cycling through the sample contexts."""
    contexts: list[tuple[str, dict]] = pickle.loads(args.contexts.read_bytes())
    env = environment(args.flat, args.templates)
    html = html_renderer(env, args.mode)
    sent = refused = 0
    with smtplib.SMTP(args.host, args.port) as smtp:
        for index in range(args.messages):
            notice, context = contexts[index % len(contexts)]
            try:
                smtp.send_message(compose(env, html, notice, context))
                sent += 1
            except smtplib.SMTPRecipientsRefused:
                refused += 1
    return {"messages": sent, "refused": refused}


def message_sizes(flat: Path, templates: Path, contexts: list[tuple[str, dict]], mode: str) -> list[int]:
    """The size in bytes of each context's message, for the report (outside any measured run)."""
    env = environment(flat, templates)
    html = html_renderer(env, mode)
    return [len(compose(env, html, notice, context).as_bytes()) for notice, context in contexts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["precompiled", "mjml"], required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--flat", type=Path, required=True, help="the precompiled (flat) templates")
    parser.add_argument("--templates", type=Path, required=True, help="the MJML templates")
    parser.add_argument("--contexts", type=Path, required=True, help="pickled [(notice, context)]")
    print(json.dumps(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
