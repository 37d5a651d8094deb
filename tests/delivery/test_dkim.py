"""DKIM: the bytes sent verify with dkimpy against the public key, 8-bit and 7-bit alike."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dunning.delivery.dkim import DkimSigner, signer_from_settings
from dunning.delivery.mime import build_message
from dunning.errors import DkimError
from dunning.settings import DkimSettings


class _Email:
    subject = "Votre carte a été refusée"
    preheader = "Réglez 1 234,50 €"
    text = "Bonjour,\r\nvotre carte Visa •••• 4242 a été refusée : 1 234,50 €.\r\n" * 3
    html = "<p>Bonjour, votre carte a été refusée : <b>1 234,50 €</b>.</p>"
    lang = "fr"
    list_unsubscribe = None


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    """A fresh RSA key: its PEM and the TXT record that publishes its public half."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _message(eight_bit: bool) -> bytes:
    return build_message(_Email(), from_address="billing@billing.example.com", from_name="Billing",
                         reply_to=None, to=["jane@contoso.example"], cc=[], message_id="<1@billing.example.com>",
                         date=datetime(2026, 11, 20, 12, tzinfo=UTC), eight_bit=eight_bit)


@pytest.mark.parametrize("eight_bit", [True, False], ids=["8bit", "7bit"])
def test_signature_verifies_against_the_published_key(key_pair, eight_bit):
    """The signed message verifies with the TXT record of dunning2026._domainkey.billing.example.com."""
    pem, record = key_pair
    signer = DkimSigner(selector="dunning2026", domain="billing.example.com", private_key=pem)
    unsigned = _message(eight_bit)
    assert (max(unsigned) > 127) is eight_bit
    signed = signer.sign(unsigned)
    assert signed.startswith(b"DKIM-Signature:") and signed.endswith(unsigned)
    assert isinstance(signed, type(unsigned))

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"dunning2026._domainkey.billing.example.com." else None

    assert dkim.verify(signed, dnsfunc=dns)
    tampered = signed.replace(b"To: jane@contoso.example", b"To: joan@contoso.example")
    assert tampered != signed and not dkim.verify(tampered, dnsfunc=dns)


def test_signer_reads_the_key_from_the_environment_or_refuses_a_bad_one(key_pair, tmp_path):
    """Off by default; a key from settings signs; a key file that is not a key is refused at start."""
    pem, _ = key_pair
    assert signer_from_settings(DkimSettings()) is None
    on = DkimSettings(enabled=True, selector="s", domain="billing.example.com", private_key=pem.decode())
    assert isinstance(signer_from_settings(on), DkimSigner)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(DkimError):
        signer_from_settings(DkimSettings(enabled=True, selector="s", domain="d.example", key_file=str(bad)))
