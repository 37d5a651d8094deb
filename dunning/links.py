"""Signed, expiring links: tokens that hold only ids (account, payment method, notice key).

Two purposes, each with a salt of its own: a settlement link pays the balance, an update link opens the
payment-method update page (card_expiring). A token signed for one purpose never verifies for the other.

Tokens are itsdangerous URL-safe timed signatures (HMAC-SHA256, a salt of their own), their payload
never compressed: a compressed payload starts with ".", and a URL path segment that starts with a dot
reads as hidden to spam filters (rspamd's URI_HIDDEN_PATH), so every token starts with a letter or a
digit (base64 of "[1,"). Compressed tokens signed by earlier releases still verify. Keys come from
DUNNING_LINKS__KEYS: the first signs, every listed key verifies, so keys rotate by prepending a new
one and dropping the old one once its links have expired.

A token also carries a short key id (a hash of the signing key, never the key). HMAC alone cannot
tell "tampered" from "signed by a key no longer listed"; the key id can, but it is only read after
the signature failed, so it is a hint for the operator, never a reason to accept anything.

Everything that depends only on the keys (their validation, the key id, the serializer, its signer
and derived HMAC keys) is computed once per key list: a run signs one link per notice. A run's LinkSigner
writes each token from what its tokens share (the same text as the serializer's); verifying is itsdangerous'.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from itsdangerous import BadPayload, BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes
from itsdangerous.serializer import Serializer
from itsdangerous.signer import HMACAlgorithm, Signer
from itsdangerous.timed import TimestampSigner

from dunning.errors import LinkError, SettingsError
from dunning.settings import LinksSettings

__all__ = ["SALT", "UPDATE_SALT", "PURPOSES", "Purpose", "FORMAT", "MIN_KEY_LENGTH", "LinkClaims", "LinkSigner",
           "require_signing_key", "key_id", "sign_token", "expired_claims", "settlement_url", "update_url",
           "token_from", "verify_token"]

SALT = "dunning.settlement-link"
UPDATE_SALT = "dunning.update-link"
Purpose = Literal["settlement", "update"]
PURPOSES: dict[str, str] = {"settlement": SALT, "update": UPDATE_SALT}
FORMAT = 1
MIN_KEY_LENGTH = 16
MAX_TOKEN = 1024  # characters: a real token is about 150; anything longer is refused before any work
_TOKEN = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True)
class LinkClaims:
    """What a valid token says: the ids it was signed for and when."""

    account: str
    payment_method: str
    key: str
    issued_at: datetime


def require_signing_key(links: LinksSettings) -> list[str]:
    """The configured keys, first one signing; SettingsError when none (or a weak one) is set."""
    return list(_checked_keys(tuple(links.key_list)))


@lru_cache(maxsize=8)
def _checked_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    if not keys:
        raise SettingsError("settlement links need a signing key: set DUNNING_LINKS__KEYS to one or "
                            "more random strings, comma-separated (the first signs, all verify)")
    weak = [n for n, key in enumerate(keys, 1) if len(key) < MIN_KEY_LENGTH]
    if weak:
        raise SettingsError(f"DUNNING_LINKS__KEYS: key {weak[0]} is shorter than {MIN_KEY_LENGTH} "
                            "characters; use a long random string (e.g. `openssl rand -hex 32`)")
    return keys


@lru_cache(maxsize=32)
def key_id(key: str) -> str:
    """A short public fingerprint of a key, embedded in tokens to name the key that signed them."""
    return hashlib.sha256(f"{SALT}.key-id.{key}".encode()).hexdigest()[:8]


def sign_token(keys: Sequence[str], *, account: str, payment_method: str, key: str,
               now: datetime | None = None, purpose: Purpose = "settlement") -> str:
    """A URL-safe token for these ids, signed with the first key (at `now`, default: the clock)."""
    if not keys:
        raise SettingsError("no signing key: set DUNNING_LINKS__KEYS")
    payload = [FORMAT, key_id(keys[0]), account, payment_method, key]
    return _serializer(tuple(keys), _clock(now), PURPOSES[purpose]).dumps(payload)


class LinkSigner:
    """Signs the links of one run: the configured keys parsed and checked once, when it is made (parsing
    them costs more than signing); SettingsError then when no valid key is set."""

    def __init__(self, links: LinksSettings) -> None:
        self._links = links
        self._keys = _checked_keys(tuple(links.key_list))
        self._settle, self._update = _Tokens(self._keys, "settlement"), _Tokens(self._keys, "update")

    def settlement_url(self, *, account: str, payment_method: str, key: str, now: datetime | None = None) -> str:
        """links.settlement_url with {token} replaced by a fresh signed token."""
        token = self._settle.sign(account, payment_method, key, now)
        return self._links.settlement_url.replace("{token}", token)

    def update_url(self, *, account: str, payment_method: str, key: str, now: datetime | None = None) -> str:
        """links.update_url (the payment-method update page) with {token} replaced by a fresh update token."""
        token = self._update.sign(account, payment_method, key, now)
        return self._links.update_url.replace("{token}", token)


# An id JSON writes as it is (ensure_ascii off): no quote, backslash, control character or lone surrogate.
_PLAIN_ID = re.compile(r'[^"\\\x00-\x1f\ud800-\udfff]*')
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


class _Tokens:
    """Tokens of one purpose, the same text as sign_token's, with what they share made once: the JSON
    around the ids, the keyed HMAC (the serializer's signer derives its key) and the last moment's stamp."""

    def __init__(self, keys: tuple[str, ...], purpose: Purpose) -> None:
        self._keys, self._purpose = keys, purpose
        derived = _serializer(keys, time.time, PURPOSES[purpose]).make_signer().derive_key()
        self._mac = hmac.new(derived, digestmod=hashlib.sha256)
        self._head = f'[{FORMAT},"{key_id(keys[0])}","'
        self._now: datetime | None = None
        self._stamped = b""

    def sign(self, account: str, payment_method: str, key: str, now: datetime | None) -> str:
        """A token for these ids signed at now (default: the clock)."""
        if not _PLAIN_ID.fullmatch(account + payment_method + key):
            return sign_token(self._keys, account=account, payment_method=payment_method, key=key, now=now,
                              purpose=self._purpose)
        if now is None or now is not self._now:  # a run signs a batch's links at one moment
            self._now, self._stamped = now, b"." + base64_encode(int_to_bytes(int(_clock(now)())))
        value = _b64(f'{self._head}{account}","{payment_method}","{key}"]'.encode()) + self._stamped
        mac = self._mac.copy()
        mac.update(value)
        return (value + b"." + _b64(mac.digest())).decode("ascii")


def _b64(data: bytes) -> bytes:
    """itsdangerous' base64_encode: URL-safe base64 without padding."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


def settlement_url(links: LinksSettings, *, account: str, payment_method: str, key: str,
                   now: datetime | None = None) -> str:
    """links.settlement_url with {token} replaced by a fresh signed token (LinkSigner signs many)."""
    return LinkSigner(links).settlement_url(account=account, payment_method=payment_method, key=key, now=now)


def update_url(links: LinksSettings, *, account: str, payment_method: str, key: str,
               now: datetime | None = None) -> str:
    """links.update_url with {token} replaced by a fresh update token (LinkSigner signs many)."""
    return LinkSigner(links).update_url(account=account, payment_method=payment_method, key=key, now=now)


def token_from(text: str, links: LinksSettings, purpose: Purpose = "settlement") -> str:
    """The token in a URL made from links.settlement_url (or update_url), or the text itself."""
    template = links.update_url if purpose == "update" else links.settlement_url
    prefix, _, suffix = template.partition("{token}")
    if text.startswith(prefix) and text.endswith(suffix) and len(text) > len(prefix) + len(suffix):
        return text[len(prefix):len(text) - len(suffix)]
    return text


def verify_token(token: str, keys: Sequence[str], *, max_age_days: int,
                 now: datetime | None = None, purpose: Purpose = "settlement") -> LinkClaims:
    """The claims of a valid token for this purpose; LinkError(reason=expired|tampered|wrong_purpose|malformed)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or not _TOKEN.match(token):
        raise LinkError(f"malformed token: not a signed {purpose}-link token", reason="malformed")
    serializer = _serializer(tuple(keys), _clock(now), PURPOSES[purpose])
    try:
        payload, issued_at = serializer.loads(token, max_age=max_age_days * 86400,
                                              return_timestamp=True)
    except SignatureExpired as exc:
        raise _expired(exc, max_age_days, _clock(now)()) from None
    except BadSignature:
        raise _purpose_error(token, keys, now, purpose) or _signature_error() from None
    except BadPayload:
        raise LinkError("malformed token: the signed content cannot be read", reason="malformed") from None
    return _claims(payload, issued_at)


def expired_claims(token: str, keys: Sequence[str], *, purpose: Purpose = "settlement") -> LinkClaims | None:
    """The claims of a token signed by one of the keys whatever its age, else None: for an expired link's page.

    Call it only after verify_token said "expired": it checks the signature, never the age."""
    if len(token) > MAX_TOKEN or not _TOKEN.match(token):
        return None
    try:
        payload, issued_at = _serializer(tuple(keys), time.time, PURPOSES[purpose]).loads(token, return_timestamp=True)
        return _claims(payload, issued_at)
    except (BadSignature, BadPayload, LinkError):
        return None


def _purpose_error(token: str, keys: Sequence[str], now: datetime | None, purpose: Purpose) -> LinkError | None:
    """A LinkError when the token is valid for the other purpose: a settlement token is no update token."""
    other = "update" if purpose == "settlement" else "settlement"
    try:
        _serializer(tuple(keys), _clock(now), PURPOSES[other]).loads(token)
    except (BadSignature, BadPayload):
        return None
    return LinkError(f"wrong purpose: the token was signed for {other} links, not {purpose} links",
                     reason="wrong_purpose")


def _expired(exc: SignatureExpired, max_age_days: int, now: float) -> LinkError:
    signed = exc.date_signed
    if signed is not None and signed.timestamp() > now:
        return LinkError(f"not yet valid: signed in the future ({signed:%Y-%m-%d %H:%M} UTC); "
                         "check the clocks", reason="expired")
    when = f" (signed {signed:%Y-%m-%d %H:%M} UTC)" if signed is not None else ""
    return LinkError(f"expired: older than {max_age_days} days{when}", reason="expired")


def _claims(payload: object, issued_at: datetime) -> LinkClaims:
    if (not isinstance(payload, list) or len(payload) != 5 or payload[0] != FORMAT
            or not all(isinstance(item, str) for item in payload[1:])):
        raise LinkError("malformed token: unexpected content", reason="malformed")
    _, _, account, payment_method, key = payload
    return LinkClaims(account, payment_method, key, issued_at)


def _signature_error() -> LinkError:
    """A bad signature: the unverified content is neither decompressed nor read (that would be work done
    for whoever forged it), so an unknown key cannot be told from tampering."""
    return LinkError("invalid signature: tampered with, or signed by a key not in DUNNING_LINKS__KEYS "
                     "(perhaps rotated out)", reason="tampered")


def _clock(now: datetime | None) -> Callable[[], float]:
    if now is None:
        return time.time
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _stopped_clock(now.astimezone(UTC).timestamp())


@lru_cache(maxsize=32)
def _stopped_clock(stamp: float) -> Callable[[], float]:
    # The same clock for the same moment, so that the serializer made for it (and the keyed states it
    # keeps) is found again by the next token signed at that moment, not made anew for every token.
    return lambda: stamp


@lru_cache(maxsize=32)
def _serializer(keys: tuple[str, ...], clock: Callable[[], float], salt: str = SALT) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key of its list; ours signs with the first.
    return _Serializer(list(reversed(keys)), salt=salt, serializer=_CompactJson, signer=_ClockedSigner,
                       signer_kwargs={"digest_method": hashlib.sha256, "clock": clock,
                                      "algorithm": _Hmac(hashlib.sha256)})


class _CompactJson:
    """itsdangerous' compact JSON (same text), with one encoder instead of one per token."""

    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    loads = staticmethod(json.loads)


class _Serializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed serializer, cheaper per token, that never compresses.

    One signer is reused instead of one built per token. The payload is plain base64 of its JSON,
    which itsdangerous reads back as it reads any uncompressed payload; reading still accepts the
    compressed form ("." then base64 of zlib data) of tokens signed before.
    """

    def dump_payload(self, obj: object) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is not None and salt != self.salt:
            return super().make_signer(salt)
        signer = self.__dict__.get("_signer")
        if signer is None:
            signer = self.__dict__["_signer"] = super().make_signer(salt)
        return signer


class _Hmac(HMACAlgorithm):
    """itsdangerous' HMAC (same bytes), starting from a copy of the keyed state instead of the key."""

    def __init__(self, digest_method: Callable[..., Any]) -> None:
        super().__init__(digest_method)
        self._keyed: dict[bytes, hmac.HMAC] = {}

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        keyed = self._keyed.get(key)
        if keyed is None:
            keyed = self._keyed[key] = hmac.new(key, digestmod=self.digest_method)
        mac = keyed.copy()
        mac.update(value)
        return mac.digest()


class _ClockedSigner(TimestampSigner):
    """A TimestampSigner whose clock can be set (tests, back-dated tokens); derived keys are kept."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock
        self._derived: dict[str | bytes | None, bytes] = {}

    def get_timestamp(self) -> int:
        return int(self._clock())

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        derived = self._derived.get(secret_key)
        if derived is None:
            derived = self._derived[secret_key] = super().derive_key(secret_key)
        return derived
