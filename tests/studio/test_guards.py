"""The studio's guards: what it reads, who may call it, and whom it may mail."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from dunning.cli import build_parser
from dunning.delivery.capture import CaptureServer
from dunning.emails.studio.recipients import RecipientRefused, check_recipient
from dunning.emails.studio.server import StudioServer
from dunning.errors import SettingsError
from dunning.settings import load_settings


def request(studio: StudioServer, method: str, target: str, *, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One raw HTTP request, the target sent exactly as written (no client-side path normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", studio.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{studio.port}", **(headers or {})}.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def send(studio: StudioServer, to: str, **headers: str) -> tuple[int, dict]:
    payload = json.dumps({"scenario": "card_charge_failed--insufficient-funds", "locale": "fr", "to": to})
    status, body = request(studio, "POST", "/api/send", body=payload.encode(),
                           headers={"Content-Type": "application/json", **headers})
    return status, json.loads(body)


def test_source_serves_a_catalog_with_line_anchors(studio: StudioServer) -> None:
    """A catalog inside the locales folder is shown, each line with its own anchor."""
    status, body = request(studio, "GET", "/source/locales/fr/LC_MESSAGES/messages.po")
    assert status == 200
    assert 'id="L1"' in body.decode() and "Votre paiement n’a pas abouti" in body.decode()


@pytest.mark.parametrize("target", [
    "/source/templates/../secret.txt",
    "/source/templates/%2e%2e/%2e%2e/secret.txt",
    "/source/locales/..%2f..%2fsecret.txt",
    "/source/templates//etc/passwd",
    "/source/templates/%2Fetc%2Fpasswd",
    "/source/scenarios/../../../secret.txt",
    "/source/project/secret.txt",
    "/source/templates/escape.txt",
])
def test_source_refuses_every_path_outside_the_folders(studio: StudioServer, tree: Path, target: str) -> None:
    """`..`, encoded `..`, absolute paths, unknown areas and symbolic links out of the folders all get 404."""
    secret = tree.parent / "secret.txt"
    secret.write_text("not for the studio\n", encoding="utf-8")
    (tree / "templates" / "emails" / "escape.txt").symlink_to(secret)
    status, body = request(studio, "GET", target)
    assert status in (404, 400)
    assert b"not for the studio" not in body and b"root:" not in body


def test_a_foreign_host_name_is_refused(studio: StudioServer) -> None:
    """A request naming another host (a DNS-rebinding page) gets nothing."""
    status, _ = request(studio, "GET", "/api/index", headers={"Host": f"evil.example:{studio.port}"})
    assert status == 400


def test_send_refuses_an_address_not_listed(studio: StudioServer, capture: CaptureServer) -> None:
    """An address outside studio.test_recipients is refused with the reason, and nothing reaches SMTP."""
    status, answer = send(studio, "customer@customer.example")
    assert status == 422 and not answer["ok"]
    assert "customer@customer.example is not a test recipient" in answer["message"]
    assert "studio.test_recipients" in answer["message"]
    assert capture.connections == 0 and capture.messages == []


def test_send_refuses_another_origin(studio: StudioServer, capture: CaptureServer) -> None:
    """A send posted by a page of another origin is refused before anything is rendered or sent."""
    status, answer = send(studio, "editor@example.com", Origin="https://evil.example")
    assert status == 403 and not answer["ok"]
    assert capture.messages == []


def test_send_to_a_listed_domain_reaches_the_server(studio: StudioServer, capture: CaptureServer) -> None:
    """An address of a listed domain gets the rendered email, French subject and all."""
    status, answer = send(studio, "anyone@example.org")
    assert status == 200 and answer["ok"], answer
    message = capture.wait_for(1)[0]
    assert message.recipients == ("anyone@example.org",)
    assert message.parsed()["Subject"] == answer["subject"] and message.parsed()["Content-Language"] == "fr"


def test_a_broken_scenario_is_an_error_not_a_crash(studio: StudioServer, tree: Path) -> None:
    """A scenario file that is not JSON shows as an error naming the file; the studio keeps answering."""
    (tree / "templates" / "emails" / "scenarios" / "past_due--broken.json").write_text("{", encoding="utf-8")
    status, body = request(studio, "GET", "/api/view?scenario=past_due--broken")
    assert status == 200
    view = json.loads(body)
    assert "past_due--broken.json" in view["error"] and "cannot read scenario" in view["error"]
    assert request(studio, "GET", "/api/index")[0] == 200


@pytest.mark.parametrize(("address", "allowed"), [
    ("editor@example.com", ["editor@example.com"]),
    ("Editor@Example.COM", ["editor@example.com"]),
    ("someone@example.org", ["@example.org"]),
])
def test_listed_addresses_and_domains_are_allowed(address: str, allowed: list[str]) -> None:
    """An address listed, or any address of a listed domain, in any letter case, may get a test."""
    assert check_recipient(address, allowed) == address


@pytest.mark.parametrize(("address", "allowed", "reason"), [
    ("someone@example.com", ["editor@example.com"], "is not a test recipient"),
    ("someone@sub.example.org", ["@example.org"], "is not a test recipient"),
    ("editor@example.com.evil.example", ["@example.com"], "is not a test recipient"),
    ("editor@example.com", [], "no test recipients are configured"),
    ("editor@example.com\r\nBcc: x@y.z", ["@example.com"], "not an email address"),
])
def test_anything_else_is_refused(address: str, allowed: list[str], reason: str) -> None:
    """Other addresses, subdomains, look-alike domains, header injection and an empty list are refused."""
    with pytest.raises(RecipientRefused, match=reason):
        check_recipient(address, allowed)


def test_settings_refuse_a_test_recipient_that_is_neither_address_nor_domain(tmp_path: Path) -> None:
    """A malformed studio.test_recipients entry is a settings error naming the key."""
    path = tmp_path / "settings.toml"
    path.write_text('[studio]\ntest_recipients = ["example.com"]\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"studio\.test_recipients.*not an address"):
        load_settings(path)


def test_the_studio_listens_on_loopback_unless_told_otherwise() -> None:
    """`dunning studio` binds 127.0.0.1 and port 8040 by default."""
    args = build_parser("studio").parse_args(["studio"])
    assert (args.host, args.port) == ("127.0.0.1", 8040)
