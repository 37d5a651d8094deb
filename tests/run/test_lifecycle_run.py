"""`dunning run` over a sample holding every lifecycle situation: exactly the planned emails, and the right links."""

from __future__ import annotations

import re
from datetime import timedelta

from dunning.delivery.mime import make_message_id
from dunning.links import verify_token
from tests.run.conftest import AS_OF, load_sample, planned, received_ids, run

LATER = (AS_OF + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sends(plan: list[dict], notice: str) -> list[dict]:
    return [entry for entry in plan if entry["notice"] == notice and entry["status"] == "send"]


def _bodies(smtp, entries: list[dict]) -> list[str]:
    ids = {make_message_id(entry["keys"][0], "example.com") for entry in entries}
    return [m.parsed().get_body(("plain",)).get_content() for m in smtp.messages if m.parsed()["Message-ID"] in ids]


def test_expiring_cards_and_pauses_run_exactly_as_planned(billing, smtp, capsys):
    """Expiring cards get an update link that only verifies as an update token; paused accounts get nothing."""
    plan = planned(capsys)
    expiring = _sends(plan, "card_expiring")
    paused = {address for entry in plan if entry["status"] == "paused" for address in entry["to"]}
    assert expiring and paused and any(len(entry["subscriptions"]) == 3 for entry in expiring)
    assert all(entry["amounts"] == {} and entry["invoices"] == [] for entry in expiring)
    code, summary = run(capsys)
    sends = [entry for entry in plan if entry["status"] == "send"]
    assert code == 0 and summary["sent"] == len(sends)
    assert sorted(received_ids(smtp)) == sorted(make_message_id(e["keys"][0], "example.com") for e in sends)
    assert not paused & {recipient for m in smtp.messages for recipient in m.recipients}
    for body in _bodies(smtp, expiring):
        token = re.search(r"https://billing\.example\.com/payment-method/(\S+)", body).group(1).strip("\u2069")
        claims = verify_token(token, ["test-signing-key"], max_age_days=45, purpose="update")   # signed now
        assert claims.key.startswith("card_expiring:") and "/settle/" not in body


def test_payments_received_bring_one_confirmation_per_episode(billing, smtp, capsys, database_url):
    """After the dunning emails went out and the payments came in, a later run confirms each group once."""
    run(capsys)
    assert not _sends(planned(capsys, LATER), "balance_settled")   # nothing is paid yet
    load_sample(database_url, 45, settled=True)
    plan = planned(capsys, LATER)
    settled = _sends(plan, "balance_settled")
    assert len(settled) == 4 and all(entry["keys"][0].startswith("balance_settled:") for entry in settled)
    assert not [e for e in plan if e["notice"] in ("card_charge_failed", "past_due")
                and (e["account"], e["payment_method"]) in {(s["account"], s["payment_method"]) for s in settled}]
    before = len(smtp.messages)
    code, summary = run(capsys, "--as-of", LATER)
    assert code == 0 and summary["sent"] == len([e for e in plan if e["status"] == "send"])
    bodies = _bodies(smtp, settled)
    assert len(bodies) == 4 and len(smtp.messages) - before == summary["sent"]
    assert all("/settle/" not in body for body in bodies)
    code, again = run(capsys, "--as-of", LATER)
    assert code == 0 and again["sent"] == 0
