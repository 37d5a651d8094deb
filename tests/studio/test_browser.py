"""The studio in a real browser: the email shown, live reload from saved files, the error panel, a test send."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from dunning.delivery.capture import CaptureServer

# ms: how long to wait for a saved file to reach the screen. A bound for a loaded machine, not the speed
# promised: bench/studio_reload.py measures that.
LIVE = 20_000
HEADING_FR = "Votre paiement n’a pas abouti"


def french_catalog(tree: Path) -> Path:
    return tree / "locales" / "fr" / "LC_MESSAGES" / "messages.po"


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_selected_email_is_shown_with_its_text_part_and_every_locale(page: Page) -> None:
    """The French email is shown in a frame beside its text part, and every locale has a card in the row."""
    expect(page.frame_locator("#focus iframe").get_by_text(HEADING_FR)).to_be_visible()
    expect(page.locator("#focus pre.text")).to_contain_text(HEADING_FR)
    expect(page.locator("#row .card")).to_have_count(6)
    expect(page.locator("#row .card[data-locale=ar] .subject span")).to_have_attribute("dir", "rtl")
    expect(page.locator("#focus iframe")).to_have_attribute("width", "600")
    page.get_by_role("button", name="Phone 375 px").click()
    expect(page.locator("#focus iframe")).to_have_attribute("width", "375")


def test_a_saved_catalog_string_is_on_screen_within_two_seconds(page: Page, tree: Path) -> None:
    """Saving a .po file puts its new text in the open page, with no restart and no compile step."""
    replace_in(french_catalog(tree), f'msgstr "{HEADING_FR}"', 'msgstr "Paiement refusé : nouvelle version"')
    expect(page.frame_locator("#focus iframe").get_by_text("Paiement refusé : nouvelle version")).to_be_visible(
        timeout=LIVE)
    expect(page.frame_locator("#focus iframe").get_by_text(HEADING_FR)).to_have_count(0)


def test_a_broken_template_shows_the_error_panel_until_it_is_fixed(page: Page, tree: Path) -> None:
    """A syntax error replaces the email with a panel naming the file and line; fixing it brings the email back."""
    template = tree / "templates" / "emails" / "card_charge_failed.mjml"
    original = template.read_text(encoding="utf-8")
    template.write_text(original.replace("{% block content %}", "{% block content %}{% if %}", 1), encoding="utf-8")
    panel = page.locator("#focus .error-panel")
    expect(panel).to_contain_text("card_charge_failed.mjml", timeout=LIVE)
    expect(page.locator("#focus iframe")).to_have_count(0)
    expect(page.locator("#lint li.error", has_text="template syntax error")).to_contain_text(
        "templates/emails/card_charge_failed.mjml:")
    template.write_text(original, encoding="utf-8")
    expect(page.frame_locator("#focus iframe").get_by_text(HEADING_FR)).to_be_visible(timeout=LIVE)
    expect(panel).to_have_count(0)


def test_a_missing_translation_is_counted_and_linked(page: Page, tree: Path) -> None:
    """Emptying a msgstr shows one missing string for that locale, linked to its msgid's line in the catalog."""
    replace_in(french_catalog(tree), f'msgstr "{HEADING_FR}"', 'msgstr ""')
    expect(page.locator("#translations tr[data-locale=fr] td").nth(3)).to_have_text("1", timeout=LIVE)
    lines = french_catalog(tree).read_text(encoding="utf-8").splitlines()
    line = lines.index('msgid "Your payment did not go through"') + 1
    link = page.locator("#untranslated details a", has_text="Your payment did not go through")
    expect(link).to_have_attribute("href", f"/source/locales/fr/LC_MESSAGES/messages.po#L{line}")


def test_send_a_test_reaches_the_capture_server(page: Page, capture: CaptureServer) -> None:
    """"Send a test" mails the email on screen to the typed address and says so in the page."""
    page.fill("#send-to", "editor@example.com")
    page.click("#send-button")
    expect(page.locator("#send-result")).to_contain_text("sent to editor@example.com")
    message = capture.wait_for(1)[0]
    assert message.recipients == ("editor@example.com",)
    parsed = message.parsed()
    assert parsed["Subject"] == "[TEST] " + page.locator("#focus .subject span").inner_text()
    assert HEADING_FR in parsed.get_body(("plain",)).get_content()


def test_send_a_test_to_a_customer_is_refused_in_the_page(page: Page, capture: CaptureServer) -> None:
    """An address outside studio.test_recipients gets a clear refusal on screen and no message is sent."""
    page.fill("#send-to", "customer@customer.example")
    page.click("#send-button")
    expect(page.locator("#send-result.refused")).to_contain_text("is not a test recipient")
    assert capture.messages == []
