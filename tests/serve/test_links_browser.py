"""The links' landing in a real browser: a captured email's link redirects, an expired one explains, a forged one
says nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dunning import store
from dunning.delivery.capture import CaptureServer
from dunning.links import require_signing_key, sign_token
from dunning.settings import Settings, load_settings
from tests.scenario import AS_OF, account, import_accounts, run_job
from tests.serve.conftest import RunningServer, serve

SETTLE = re.compile(r"https://billing\.example\.com/settle/([A-Za-z0-9_.-]+)")
PAY = "https://billing.example.com/pay/"


@dataclass
class Landing:
    settings: Settings
    server: RunningServer
    tokens: dict[str, str]  # account id → the settlement token its email carried


@pytest.fixture
def landing(tmp_path, monkeypatch) -> Iterator[Landing]:
    """Two accounts (French, Egyptian Arabic) sent a card_charge_failed email, and the server answering links."""
    url = f"sqlite:///{tmp_path / 'dunning.sqlite3'}"
    monkeypatch.setenv("DUNNING_DATABASE__URL", url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "landing-test-signing-key")
    monkeypatch.setenv("DUNNING_LINKS__PORTAL_URL", "https://billing.example.com/portal")
    import_accounts(url, [account(1), account(2, "ar-EG", "Africa/Cairo")], AS_OF)
    with CaptureServer(port=0) as capture:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(capture.port))
        settings = load_settings()
        assert run_job(settings, AS_OF).sent == 2
        messages = capture.wait_for(2)
    tokens = {}
    for message in messages:
        parsed = message.parsed()
        text = parsed.get_body(("plain",)).get_content()
        (tokens[{"fr-FR": "acct_1", "ar-EG": "acct_2"}[parsed["Content-Language"]]],) = set(SETTLE.findall(text))
    with serve(settings) as server:
        yield Landing(settings, server, tokens)


def _clicks(settings: Settings) -> list[tuple]:
    clicks = store.link_clicks
    with store.connect(settings.database.url).connect() as conn:
        return [tuple(row) for row in conn.execute(select(clicks.c.key, clicks.c.email_id, clicks.c.purpose))]


@dataclass
class Visit:
    requested: list[str]  # every URL the browser asked for, redirects followed
    statuses: list[tuple[str, int]]  # every response it got
    page: object


def _visit(browser, url: str) -> Visit:
    """Open url in a fresh page at phone width; the browser follows redirects (the payment site is unreachable)."""
    from playwright.sync_api import Error

    page = browser.new_context(viewport={"width": 390, "height": 800}).new_page()
    visit = Visit([], [], page)
    page.on("request", lambda request: visit.requested.append(request.url))
    page.on("response", lambda response: visit.statuses.append((response.url, response.status)))
    try:
        page.goto(url)
    except Error:
        assert len(visit.requested) > 1, "only a redirect may lead off the loopback server"
    return visit


def test_an_emailed_link_redirects_to_the_payment_page_and_counts_a_click(landing, browser):
    """The link of a sent email answers 303 to links.pay_url with the group's ids, each visit recorded as a click."""
    link = f"{landing.server.url}/settle/{landing.tokens['acct_1']}"
    for _ in range(2):
        visit = _visit(browser, link)
        assert visit.statuses[0] == (link, 303)
        assert visit.requested == [link, f"{PAY}acct_1?payment_method=pm_1"]
    (key, email_id, purpose), again = _clicks(landing.settings)
    assert key.startswith("card_charge_failed:acct_1:pm_1") and email_id is not None and purpose == "settlement"
    assert again == (key, email_id, purpose)


def test_an_open_invoice_with_its_own_payment_page_sends_there(landing, browser):
    """When the group's owed invoice has its own payment page (Stripe's hosted invoice), the link goes there."""
    with store.connect(landing.settings.database.url).begin() as conn:
        conn.execute(update(store.invoices).where(store.invoices.c.id == "inv_1")
                     .values(hosted_invoice_url="https://billing.example.com/hosted/inv_1"))
    visit = _visit(browser, f"{landing.server.url}/settle/{landing.tokens['acct_1']}")
    assert visit.requested[-1] == "https://billing.example.com/hosted/inv_1"


def test_an_update_link_goes_to_the_card_update_page(landing, browser):
    """An update token lands on links.card_update_url; a settlement token is refused there."""
    token = sign_token(require_signing_key(landing.settings.links), account="acct_2", payment_method="pm_2",
                       key="card_expiring:acct_2:pm_2:2028-03:1", now=AS_OF, purpose="update")
    visit = _visit(browser, f"{landing.server.url}/update/{token}")
    assert visit.statuses[0][1] == 303
    assert visit.requested[-1] == "https://billing.example.com/payment-method/acct_2/pm_2/edit"
    assert _clicks(landing.settings) == [("card_expiring:acct_2:pm_2:2028-03:1", None, "update")]
    assert _visit(browser, f"{landing.server.url}/update/{landing.tokens['acct_2']}").statuses[0][1] == 400


@pytest.mark.parametrize(("account_id", "lang", "direction", "title"),
                         [("acct_1", "fr-FR", "ltr", "Ce lien a expiré"),
                          ("acct_2", "ar-EG", "rtl", "انتهت صلاحية هذا الرابط")])
def test_an_expired_link_explains_in_the_account_language(landing, browser, account_id, lang, direction,
                                                          title):
    """Past links.max_age_days, the link answers 410 with a page in the account's language and direction."""
    landing.server.clock.moment += timedelta(days=landing.settings.links.max_age_days, hours=1)
    link = f"{landing.server.url}/settle/{landing.tokens[account_id]}"
    visit = _visit(browser, link)
    page = visit.page
    assert visit.statuses == [(link, 410)]
    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == (lang, direction)
    assert page.locator("h1").inner_text() == title
    assert page.locator("a[href='https://billing.example.com/portal']").count() == 1
    assert page.locator("a[href='https://example.com/support']").count() == 1
    content = page.content()
    assert not any(private in content for private in ("Company", "billing1@", "billing2@", "acct_", "pm_"))
    assert _clicks(landing.settings) == []
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # readable at phone width: nothing wider than the screen


@pytest.mark.parametrize("forge", [
    lambda token: token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),  # signature changed
    lambda token: token.replace(".", "x", 1),  # no longer three parts
    lambda token: "not-a-token",
])
def test_a_forged_link_is_a_400_that_says_nothing(landing, browser, forge):
    """A tampered or malformed token answers 400 with the same page, naming no reason, no ids, no click."""
    visit = _visit(browser, f"{landing.server.url}/settle/{forge(landing.tokens['acct_1'])}")
    assert visit.statuses == [(visit.requested[0], 400)]
    content = visit.page.content().lower()
    assert "this link is not valid" in content
    assert not any(word in content for word in ("signature", "tamper", "expired", "malformed", "key", "acct"))
    assert _clicks(landing.settings) == []
