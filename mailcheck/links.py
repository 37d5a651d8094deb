"""Every link of every part, found as mail clients find them (node: mailparser, linkify-it), and each one checked.

Both parts must offer the action link (settlement, the card update page, or support for balance_settled) and
the support page. Each link found must be one of those or the billing contact's address, carry no invisible
character, and a signed link's token must verify for its purpose.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from dunning.errors import LinkError
from dunning.links import Purpose, token_from, verify_token
from dunning.settings import LinksSettings
from mailcheck.emails import SAMPLE_KEY, MailcheckEmail

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "links.mjs"


@dataclass(frozen=True, slots=True)
class LinkProblem:
    """Something wrong with the links of one email."""

    email: str
    problem: str


def find_links(emails: list[MailcheckEmail]) -> dict[str, dict[str, list[dict[str, str]]]]:
    """By email name: the links mailparser and linkify-it find in its HTML and text parts."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "mailparser").is_dir():
        raise RuntimeError("mailcheck needs node and its packages: run `npm ci` in mailcheck/ (make mailcheck does)")
    with tempfile.TemporaryDirectory(prefix="mailcheck-links-") as work:
        files = {}
        for number, email in enumerate(emails):
            path = Path(work) / f"{number}.eml"
            path.write_bytes(email.eml)
            files[str(path)] = email.name
        done = subprocess.run([node, str(SCRIPT), *files], capture_output=True, text=True, check=True, cwd=HERE)
    return {files[path]: found for path, found in json.loads(done.stdout).items()}


def check_links(emails: list[MailcheckEmail]) -> tuple[list[LinkProblem], int]:
    """The problems of every email's links, and how many links were found and checked."""
    found = find_links(emails)
    problems: list[LinkProblem] = []
    count = 0
    for email in emails:
        links = found[email.name]
        count += len(links["html"]) + len(links["text"])
        problems += [LinkProblem(email.name, text) for text in _problems(email, links)]
    return problems, count


def _problems(email: MailcheckEmail, links: dict[str, list[dict[str, str]]]) -> list[str]:
    html = [link["href"] for link in links["html"]]
    text = [link["url"] for link in links["text"]]
    problems = [f"{part} part: {url!r} is not offered by this email" for part, urls in (("HTML", html), ("text", text))
                for url in urls if url not in email.links and url != f"mailto:{email.contact}"]
    for part, urls in (("HTML", html), ("text", text)):
        problems += [f"{part} part: no link to {url!r} found (mail clients would show none)"
                     for url in email.links if url not in urls]
        problems += [f"{part} part: {url!r} carries an invisible character" for url in urls
                     if any(unicodedata.category(c) == "Cf" for c in url)]
    problems += [f"{url!r}: {why}" for url in set(html + text) if (why := _token_problem(url)) is not None]
    return problems


_LINKS = LinksSettings(keys=SecretStr(SAMPLE_KEY))
_PURPOSES: tuple[Purpose, ...] = ("settlement", "update")


def _token_problem(url: str) -> str | None:
    """Why a signed link's token does not verify for its purpose (None for a link that carries none)."""
    for purpose in _PURPOSES:
        token = token_from(url, _LINKS, purpose)
        if token != url:
            try:
                verify_token(token, _LINKS.key_list, max_age_days=_LINKS.max_age_days, purpose=purpose)
            except LinkError as exc:
                return f"its {purpose} token does not verify: {exc.message}"
            return None
    return None
