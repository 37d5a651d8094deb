"""Settlement links: signed, expiring tokens holding only ids, with key rotation and clear failures."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from dunning.cli import main
from dunning.errors import LinkError, SettingsError
from dunning.links import (
    MAX_TOKEN,
    SALT,
    LinkClaims,
    _ClockedSigner,
    key_id,
    require_signing_key,
    settlement_url,
    sign_token,
    token_from,
    verify_token,
)
from dunning.settings import LinksSettings

OLD, NEW = "old-key-0123456789abcdef", "new-key-fedcba9876543210"
IDS = dict(account="acct_1", payment_method="pm_1", key="past_due:acct_1:pm_1:2026-11-01:2")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def reason(token: str, keys=(NEW,), now=NOW, max_age_days=45) -> str:
    with pytest.raises(LinkError) as caught:
        verify_token(token, list(keys), max_age_days=max_age_days, now=now)
    return caught.value.reason


def payload_of(token: str):
    data = token.split(".")[-3] if token.startswith(".") else token.split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return json.loads(zlib.decompress(raw) if token.startswith(".") else raw)


def test_round_trip_returns_the_ids_and_issue_time():
    """A token verifies to the account, payment method and notice key it was signed for."""
    token = sign_token([NEW], **IDS, now=NOW)
    assert verify_token(token, [NEW], max_age_days=45, now=NOW + timedelta(days=1)) == LinkClaims(
        **IDS, issued_at=NOW)


def test_a_token_holds_only_ids():
    """The signed content is the ids and a key id: no amounts, names or addresses."""
    token = sign_token([NEW], **IDS, now=NOW)
    assert payload_of(token) == [1, key_id(NEW), IDS["account"], IDS["payment_method"], IDS["key"]]
    assert NEW not in token


def test_tokens_expire_after_max_age_days():
    """A token is valid until max_age_days after signing and expired after that."""
    token = sign_token([NEW], **IDS, now=NOW - timedelta(days=44))
    assert verify_token(token, [NEW], max_age_days=45, now=NOW).account == "acct_1"
    old = sign_token([NEW], **IDS, now=NOW - timedelta(days=46))
    assert reason(old) == "expired"
    with pytest.raises(LinkError, match="older than 45 days"):
        verify_token(old, [NEW], max_age_days=45, now=NOW)


def test_a_token_from_the_future_is_rejected():
    """A token dated after now is refused and the message points at the clocks."""
    token = sign_token([NEW], **IDS, now=NOW + timedelta(hours=1))
    with pytest.raises(LinkError, match="future") as caught:
        verify_token(token, [NEW], max_age_days=45, now=NOW)
    assert caught.value.reason == "expired"


def test_a_changed_signature_or_payload_is_tampered():
    """Altering the signature or swapping in other ids makes the token "tampered"."""
    token = sign_token([NEW], **IDS, now=NOW)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert reason(flipped) == "tampered"
    other = sign_token([NEW], account="acct_2", payment_method="pm_2", key="k", now=NOW)
    swapped = other.rsplit(".", 2)[0] + "." + token.rsplit(".", 2)[1] + "." + token.rsplit(".", 1)[1]
    assert reason(swapped) == "tampered"


def test_rotated_keys_verify_while_listed():
    """Tokens signed with an old key verify while it is listed; new tokens are signed with the first key."""
    old_token = sign_token([OLD], **IDS, now=NOW)
    assert verify_token(old_token, [NEW, OLD], max_age_days=45, now=NOW).key == IDS["key"]
    new_token = sign_token([NEW, OLD], **IDS, now=NOW)
    assert verify_token(new_token, [NEW], max_age_days=45, now=NOW).key == IDS["key"]
    assert reason(new_token, keys=[OLD]) == "tampered"


def test_a_removed_key_is_rejected_as_unknown():
    """Once its key is removed from the list, a token is refused, the message naming a rotated-out key."""
    token = sign_token([OLD], **IDS, now=NOW)
    with pytest.raises(LinkError, match="not in DUNNING_LINKS__KEYS") as caught:
        verify_token(token, [NEW], max_age_days=45, now=NOW)
    assert caught.value.reason == "tampered"


@pytest.mark.parametrize("compressed", [True, False], ids=["compressed", "plain"])
def test_a_forged_two_megabyte_token_is_refused_in_constant_memory(compressed):
    """A 2 MB forged token (a zlib bomb, or plain JSON) is refused before any of it is decoded."""
    bomb = zlib.compress(b"[" * 50_000_000, 9) if compressed else b'["' + b"x" * 1_500_000 + b'"]'
    payload = base64.urlsafe_b64encode(bomb).rstrip(b"=").decode()
    token = ("." if compressed else "") + (payload * (2_000_000 // len(payload) + 1))[:2_000_000] + ".AAAAAA.sig"
    tracemalloc.start()
    try:
        with pytest.raises(LinkError) as caught:
            verify_token(token, [NEW], max_age_days=45, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == "malformed" and peak < 64 * 1024


def test_a_forged_token_within_the_length_cap_is_refused_without_reading_its_content():
    """A forged token of allowed length whose content is a zlib bomb is refused as tampered, in little memory."""
    bomb = base64.urlsafe_b64encode(zlib.compress(b"[" * 50_000_000, 9)).rstrip(b"=").decode()
    token = "." + bomb[:MAX_TOKEN - 20] + ".AAAAAA.sig"
    tracemalloc.start()
    try:
        with pytest.raises(LinkError) as caught:
            verify_token(token, [NEW], max_age_days=45, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == "tampered" and peak < 64 * 1024


@pytest.mark.parametrize("token", ["", "abc", "a.b", "!!!.x.y", "a b.c.d", "a.b.c.d.e", None])
def test_malformed_tokens_are_malformed(token):
    """Text that is not a token at all is "malformed"."""
    assert reason(token) == "malformed"


def test_a_validly_signed_foreign_payload_is_malformed():
    """Content signed with our key and salt but not shaped like a link is refused as malformed."""
    foreign = URLSafeTimedSerializer(NEW, salt=SALT, signer=_ClockedSigner,
                                     signer_kwargs={"digest_method": hashlib.sha256}).dumps({"a": 1})
    assert reason(foreign, now=None) == "malformed"


def test_require_signing_key_names_the_variable():
    """Without keys, require_signing_key raises SettingsError telling to set DUNNING_LINKS__KEYS."""
    with pytest.raises(SettingsError, match="DUNNING_LINKS__KEYS"):
        require_signing_key(LinksSettings())
    with pytest.raises(SettingsError, match="shorter than 16"):
        require_signing_key(LinksSettings(keys=f"{NEW},short"))
    assert require_signing_key(LinksSettings(keys=f" {NEW} , {OLD} ")) == [NEW, OLD]


def test_settlement_url_embeds_a_verifiable_token():
    """settlement_url fills {token}; the token extracted from it verifies to the same ids."""
    links = LinksSettings(keys=NEW, settlement_url="https://pay.example.com/s/{token}?utm=dunning")
    url = settlement_url(links, **IDS)
    assert url.startswith("https://pay.example.com/s/") and url.endswith("?utm=dunning")
    claims = verify_token(token_from(url, links), [NEW], max_age_days=45)
    assert (claims.account, claims.payment_method, claims.key) == tuple(IDS.values())


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """Run the CLI with only DUNNING_LINKS__KEYS set and an empty settings file."""
    for name in list(os.environ):
        if name.startswith("DUNNING_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", f"{NEW},{OLD}")
    settings = tmp_path / "settings.toml"
    settings.write_text("")
    return ["--settings", str(settings)]


def test_link_verify_prints_the_ids_as_json(cli_env, capsys):
    """`dunning link verify TOKEN` exits 0 and prints the ids as JSON."""
    token = sign_token([OLD], **IDS)
    assert main([*cli_env, "link", "verify", token]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in IDS} == IDS
    assert datetime.fromisoformat(printed["issued_at"]).tzinfo is not None


def test_link_verify_accepts_the_whole_url(cli_env, capsys):
    """`dunning link verify` also takes the settlement URL as printed by `dunning link sign`."""
    assert main([*cli_env, "link", "sign", "--account", "acct_1", "--payment-method", "pm_1",
                 "--key", IDS["key"]]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://billing.example.com/settle/")
    assert main([*cli_env, "link", "verify", url]) == 0
    assert json.loads(capsys.readouterr().out)["key"] == IDS["key"]


@pytest.mark.parametrize("make, expected", [
    (lambda: sign_token([NEW], **IDS, now=datetime.now(UTC) - timedelta(days=60)), "expired"),
    (lambda: sign_token(["someone-elses-key-000000"], **IDS), "not in DUNNING_LINKS__KEYS"),
    (lambda: sign_token([NEW], **IDS)[:-2] + "xx", "tampered"),
    (lambda: "not-a-token", "malformed"),
])
def test_link_verify_explains_rejections_with_a_non_zero_exit(cli_env, capsys, make, expected):
    """A rejected token exits 65 with the reason on stderr and nothing on stdout."""
    assert main([*cli_env, "link", "verify", make()]) == 65
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err and captured.err.startswith("dunning link: error: ")


def test_link_verify_without_keys_is_a_settings_error(cli_env, monkeypatch, capsys):
    """Without DUNNING_LINKS__KEYS the command exits 78 and names the variable."""
    monkeypatch.delenv("DUNNING_LINKS__KEYS")
    assert main([*cli_env, "link", "verify", "a.b.c"]) == 78
    assert "DUNNING_LINKS__KEYS" in capsys.readouterr().err


def plain_itsdangerous(keys) -> URLSafeTimedSerializer:
    """The serializer a settlement page built on itsdangerous alone would use (first key signs)."""
    return URLSafeTimedSerializer(list(reversed(keys)), salt=SALT,
                                  signer_kwargs={"digest_method": hashlib.sha256})


@pytest.mark.parametrize("ids", [
    IDS,
    dict(account="cus_" + "Nf3kLm0PqRsT" * 3, payment_method="card_" + "1MvOh2LkdIwHu7ix" * 3,
         key="card_charge_failed:" + "cus_Nf3kLm0PqRsT" * 3 + ":" + "card_1MvOh2LkdIwHu7ix" * 3),
    dict(account="acct_é", payment_method="pm_1", key="k"),
])
def test_tokens_verify_with_itsdangerous_alone(ids):
    """A signed token, compressed or not, is read back by a plain itsdangerous serializer."""
    token = settlement_url(LinksSettings(keys=f"{NEW},{OLD}", settlement_url="https://p.example/{token}"),
                           **ids).removeprefix("https://p.example/")
    assert plain_itsdangerous([NEW, OLD]).loads(token, max_age=60) == [
        1, key_id(NEW), ids["account"], ids["payment_method"], ids["key"]]
    assert verify_token(token, [NEW], max_age_days=45).account == ids["account"]


@pytest.mark.parametrize("ids", [
    IDS,
    dict(account="acct_" + "x" * 40, payment_method="pm_1", key="past_due:acct_" + "x" * 40),
    dict(account="acct_é", payment_method="pm_1", key="k"),
])
def test_tokens_start_with_a_letter_or_digit_and_are_url_safe(ids):
    """Even ids that compress well give an uncompressed token of URL-safe characters starting with a letter or digit."""
    token = sign_token([NEW], **ids, now=NOW)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", token)
    assert payload_of(token)[2:] == list(ids.values())


@pytest.mark.parametrize("ids", [IDS, dict(account="acct_" + "x" * 40, payment_method="pm_1",
                                            key="past_due:acct_" + "x" * 40)])
def test_tokens_from_plain_itsdangerous_still_verify(ids):
    """Links signed the plain itsdangerous way (as earlier releases did) keep verifying."""
    token = plain_itsdangerous([NEW]).dumps([1, key_id(NEW), *ids.values()])
    assert token.startswith(".") or ids is IDS   # the long ids at least were signed compressed
    claims = verify_token(token, [NEW], max_age_days=45)
    assert (claims.account, claims.payment_method, claims.key) == tuple(ids.values())


def test_settlement_url_follows_the_configured_keys():
    """Each settings object signs with its own first key, however many were used before."""
    for first, second in ((NEW, OLD), (OLD, NEW), (NEW, OLD)):
        url = settlement_url(LinksSettings(keys=f"{first},{second}"), **IDS)
        token = url.rsplit("/", 1)[1]
        assert payload_of(token)[1] == key_id(first)
        assert verify_token(token, [first], max_age_days=45).account == IDS["account"]


def test_settlement_url_refuses_missing_or_weak_keys_every_time():
    """Without a key, or with a short one, settlement_url raises SettingsError on every call."""
    for _ in range(2):
        with pytest.raises(SettingsError, match="DUNNING_LINKS__KEYS"):
            settlement_url(LinksSettings(), **IDS)
        with pytest.raises(SettingsError, match="shorter than 16"):
            settlement_url(LinksSettings(keys=f"{NEW},short"), **IDS)


def test_an_update_link_is_no_settlement_link_and_the_reverse():
    """Update and settlement tokens have salts of their own: each verifies only for its own purpose."""
    update = sign_token([NEW], **IDS, now=NOW, purpose="update")
    settle = sign_token([NEW], **IDS, now=NOW)
    assert verify_token(update, [NEW], max_age_days=45, now=NOW, purpose="update").key == IDS["key"]
    for token, purpose in ((update, "settlement"), (settle, "update")):
        with pytest.raises(LinkError, match="wrong purpose") as caught:
            verify_token(token, [NEW], max_age_days=45, now=NOW, purpose=purpose)
        assert caught.value.reason == "wrong_purpose"


def test_update_url_goes_to_the_payment_method_page(monkeypatch):
    """links.update_url fills links.update_url's {token} with an update token that token_from finds again."""
    from dunning.links import update_url
    links = LinksSettings(keys=NEW)
    url = update_url(links, **IDS, now=NOW)
    assert url.startswith("https://billing.example.com/payment-method/")
    token = token_from(url, links, "update")
    assert verify_token(token, [NEW], max_age_days=45, now=NOW, purpose="update").account == "acct_1"


@pytest.mark.parametrize("ids", [
    IDS,
    dict(account="acct_é", payment_method="pm_\u4e2d", key="k\U0001f600"),
    dict(account='acct_"1"', payment_method="pm\\1", key="k\x00\x1f\x7f"),
    dict(account="", payment_method="", key=""),
])
@pytest.mark.parametrize("purpose", ["settlement", "update"])
def test_a_signer_writes_the_tokens_of_sign_token_byte_for_byte(ids, purpose):
    """LinkSigner's tokens, made from what they share, are sign_token's text, for any ids and either purpose."""
    from dunning.links import LinkSigner
    signer = LinkSigner(LinksSettings(keys=f"{NEW},{OLD}", settlement_url="https://p.example/s/{token}",
                                      update_url="https://p.example/u/{token}"))
    sign = signer.update_url if purpose == "update" else signer.settlement_url
    for now in (NOW, NOW, NOW + timedelta(seconds=1)):
        token = sign(**ids, now=now).rsplit("/", 1)[1]
        assert token == sign_token([NEW, OLD], **ids, now=now, purpose=purpose)
        assert verify_token(token, [OLD, NEW], max_age_days=45, now=now, purpose=purpose).key == ids["key"]


@settings(max_examples=300, deadline=None)
@given(account=st.text(max_size=12), payment_method=st.text(max_size=12), key=st.text(max_size=12),
       seconds=st.integers(0, 10**6))
def test_any_ids_get_the_tokens_of_sign_token(account, payment_method, key, seconds):
    """Whatever the ids hold (quotes, controls, surrogates, any plane), a signer's token is sign_token's."""
    from dunning.links import LinkSigner
    signer = LinkSigner(LinksSettings(keys=NEW, settlement_url="https://p.example/s/{token}"))
    now = NOW + timedelta(seconds=seconds)
    token = signer.settlement_url(account=account, payment_method=payment_method, key=key, now=now).rsplit("/", 1)[1]
    assert token == sign_token([NEW], account=account, payment_method=payment_method, key=key, now=now)
