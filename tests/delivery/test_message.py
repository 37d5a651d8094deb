"""build_message: RFC 5322 bytes that parse back to the same subject, recipients and parts."""

from __future__ import annotations

import hashlib
import timeit
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.delivery.mime import (
    AsciiBytes,
    BodyPieces,
    CrlfBytes,
    DotSafeBytes,
    address_domain,
    build_message,
    encoded_constants,
    envelope_address,
    make_message_id,
)
from dunning.errors import MessageError

SENT_AT = datetime.fromisoformat("2026-11-02T10:30:00+01:00")
MESSAGE_ID = make_message_id("past_due:acct_1:pm_1:2026-11-01:2", "example.com")


def build(email, **overrides) -> bytes:
    kwargs = dict(from_address="billing@example.com", from_name="Example Cloud Billing",
                  reply_to="support@example.com", to=["compta@contoso.example"], cc=[],
                  message_id=MESSAGE_ID, date=SENT_AT)
    kwargs.update(overrides)
    return build_message(email, **kwargs)


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def body_text(message, subtype: str) -> str:
    return message.get_body((subtype,)).get_content().replace("\r\n", "\n")


def assert_wellformed(raw: bytes, *, eight_bit: bool = False) -> None:
    assert eight_bit or raw.isascii()
    assert raw.split(b"\r\n\r\n", 1)[0].isascii()  # headers are always ASCII (RFC 2047 words)
    assert raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r")
    assert all(len(line) <= 78 for line in header_lines(raw))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert not parse(raw).defects


def test_headers_and_parts_parse_back(email):
    """Every required header is present and the text and HTML parts come back unchanged."""
    raw = build(email, cc=["boss@contoso.example"])
    message = parse(raw)
    assert_wellformed(raw)
    assert message["Subject"] == email.subject
    assert message["From"].addresses[0].display_name == "Example Cloud Billing"
    assert message["From"].addresses[0].addr_spec == "billing@example.com"
    assert [a.addr_spec for a in message["To"].addresses] == ["compta@contoso.example"]
    assert [a.addr_spec for a in message["Cc"].addresses] == ["boss@contoso.example"]
    assert message["Reply-To"].addresses[0].addr_spec == "support@example.com"
    assert message["Date"].datetime == SENT_AT
    assert message["Message-ID"] == MESSAGE_ID
    assert message["MIME-Version"] == "1.0"
    assert message["Content-Language"] == "en"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in message.iter_parts())
    assert body_text(message, "plain") == email.text
    assert body_text(message, "html") == email.html


def test_optional_headers_are_left_out(email):
    """Without Cc or Reply-To the message carries neither header."""
    message = parse(build(email, reply_to=None, cc=[]))
    assert message["Cc"] is None and message["Reply-To"] is None


def test_non_ascii_subject_and_name_are_rfc2047_encoded(make_email):
    """Non-ASCII subjects and sender names travel as encoded words and decode to the same text."""
    email = make_email(subject="Échec du paiement — 1 234,50 € dû", html="<p>é</p>", text="é", lang="fr-FR")
    raw = build(email, from_name="Facturation Société Générale")
    message = parse(raw)
    assert_wellformed(raw)
    assert b"=?utf-8?b?" in raw
    assert message["Subject"] == email.subject
    assert message["From"].addresses[0].display_name == "Facturation Société Générale"
    assert message["Content-Language"] == "fr-FR"


def test_long_subjects_fold_under_78_characters(make_email):
    """A long ASCII subject folds at spaces and a long Japanese one splits into encoded words."""
    for subject in ("Your invoice INV-2026-0042 is past due " * 6, "お支払いが確認できませんでした。" * 8):
        email = make_email(subject=subject.strip(), html="<p>x</p>", text="x")
        raw = build(email)
        assert_wellformed(raw)
        assert parse(raw)["Subject"] == subject.strip()


def display_name(raw: bytes) -> str:
    """The From display name as RFC 2047 readers show it (blanks between encoded words dropped).

    email.parser keeps a blank between adjacent encoded words inside a phrase, unlike RFC 2047 6.2
    and mail clients, so names spanning several encoded words are decoded with decode_header.
    """
    folded = raw.split(b"\r\nFrom: ", 1)[1].split(b"\r\nReply-To: ", 1)[0].decode("ascii")
    if "=?utf-8?b?" not in folded:
        return parse(raw)["From"].addresses[0].display_name
    words = folded.rsplit("<", 1)[0].replace("\r\n ", " ")
    return str(make_header(decode_header(words))).strip()


@settings(max_examples=150, deadline=None)
@given(subject=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
                       max_size=300).filter(str.strip),
       name=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=80))
def test_any_printable_subject_and_name_round_trip(subject, name):
    """Whatever printable text a translation produces, subject and sender name parse back unchanged."""
    # Runs of blanks in a display name mean one space; build_message collapses them.
    email = type("E", (), dict(subject=subject, html="<p>x</p>", text="x", lang="en"))
    raw = build(email, from_name=name)
    message = parse(raw)
    assert_wellformed(raw)
    assert message["Subject"] == subject
    assert display_name(raw) == " ".join(name.split())
    assert message["From"].addresses[0].addr_spec == "billing@example.com"


@pytest.mark.parametrize("field, value", [
    ("subject", "Payment failed\r\nBcc: victim@example.org"),
    ("subject", "Payment failed\nBcc: victim@example.org"),
    ("subject", "Payment\x00failed"),
    ("subject", "Payment\u2028failed"),
    ("from_name", "Billing\r\nBcc: victim@example.org"),
    ("from_name", "Billing\x1b[31m"),
])
def test_control_characters_in_headers_are_refused(email, field, value):
    """CR, LF and other control characters in a subject or name raise MessageError naming the header."""
    if field == "subject":
        email = type(email)(subject=value, html=email.html, text=email.text)
        overrides = {}
    else:
        overrides = {field: value}
    with pytest.raises(MessageError) as caught:
        build(email, **overrides)
    assert caught.value.header == {"subject": "Subject", "from_name": "From"}[field]
    assert ("line break" in caught.value.reason) == any(c in value for c in "\r\n")
    assert "victim" not in str(caught.value)


@pytest.mark.parametrize("field, value, header", [
    ("to", ["a@example.com\r\nBcc: victim@example.org"], "To (address 1)"),
    ("cc", ["ok@example.com", "b@example.com\nBcc: v@example.org"], "Cc (address 2)"),
    ("reply_to", "support@example.com\r\nX-Evil: 1", "Reply-To"),
    ("from_address", "billing@example.com\r\n", "From"),
])
def test_control_characters_in_addresses_are_refused(email, field, value, header):
    """An address carrying CR/LF is refused with the header it was meant for."""
    with pytest.raises(MessageError) as caught:
        build(email, **{field: value})
    assert caught.value.header == header
    assert "line break" in caught.value.reason


@pytest.mark.parametrize("address", [
    "no-at-sign", "user@", "@example.com", "two words@example.com", "user@localhost",
    '"quoted"@example.com', "ünïcode@example.com", "a..b@example.com", "user@exa_mple.com",
    "user@-example.com", "user@[127.0.0.1]", "", "user@example..com", "x" * 65 + "@example.com",
])
def test_malformed_addresses_are_refused(email, address):
    """Anything but a plain local@domain address is refused before a message is built."""
    with pytest.raises(MessageError) as caught:
        build(email, to=[address])
    assert caught.value.header == "To (address 1)"


def test_idn_domains_go_out_in_punycode(email):
    """An internationalized domain is written as punycode in the header and the envelope."""
    raw = build(email, to=["kunde@bücher.example"], cc=["info@münchen.de"])
    message = parse(raw)
    assert [a.addr_spec for a in message["To"].addresses] == ["kunde@xn--bcher-kva.example"]
    assert [a.addr_spec for a in message["Cc"].addresses] == ["info@xn--mnchen-3ya.de"]
    assert envelope_address("kunde@BÜCHER.example") == "kunde@xn--bcher-kva.example"
    assert address_domain("billing@bücher.example") == "xn--bcher-kva.example"


def test_many_recipients_fold(email):
    """A long To list folds between addresses and every address survives."""
    recipients = [f"person{n}@subsidiary{n}.example.com" for n in range(12)]
    raw = build(email, to=recipients)
    assert_wellformed(raw)
    assert [a.addr_spec for a in parse(raw)["To"].addresses] == recipients


@pytest.mark.parametrize("text, html, encodings", [
    ("plain ascii\n", "<p>plain</p>\n", ("7bit", "7bit")),
    ("A" * 5000 + "\nend\n", "<p>" + "B" * 5000 + "</p>\n", ("quoted-printable", "base64")),
    ("Votre paiement de 1 234,50 EUR a échoué.\n" * 20, "<p>Payé à l'échéance</p>\n" * 20,
     ("quoted-printable", "base64")),
    ("تم رفض الدفع\n" * 20, "<p dir=\"rtl\">تم رفض الدفع</p>\n" * 20, ("base64", "base64")),
])
def test_bodies_keep_lines_under_998_octets(make_email, text, html, encodings):
    """Long lines and non-ASCII bodies are encoded so no line passes 998 octets, and decode unchanged."""
    raw = build(make_email(subject="s", html=html, text=text))
    message = parse(raw)
    assert_wellformed(raw)
    assert tuple(p["Content-Transfer-Encoding"] for p in message.iter_parts()) == encodings
    assert body_text(message, "plain") == text
    assert body_text(message, "html") == html


@pytest.mark.parametrize("text, html, encodings", [
    ("plain ascii\n", "<p>plain</p>\n", ("7bit", "7bit")),
    ("Votre paiement de 1 234,50 EUR a échoué.\n" * 20, "<p>Payé à l'échéance</p>\n" * 20, ("8bit", "8bit")),
    ("تم رفض الدفع\n" * 20, "<p dir=\"rtl\">تم رفض الدفع</p>\n" * 20, ("8bit", "8bit")),
    ("Payé " + "a" * 1200 + "\nend\n", "<p>" + "é" * 600 + "</p>\n", ("quoted-printable", "base64")),
])
def test_eight_bit_bodies_go_as_they_are_unless_a_line_is_too_long(make_email, text, html, encodings):
    """With eight_bit, UTF-8 bodies are sent unencoded (8bit) while every line stays within 998 octets."""
    raw = build(make_email(subject="Échec", html=html, text=text), eight_bit=True)
    message = parse(raw)
    assert_wellformed(raw, eight_bit=True)
    assert tuple(p["Content-Transfer-Encoding"] for p in message.iter_parts()) == encodings
    assert raw.isascii() == (encodings[0] != "8bit")
    assert body_text(message, "plain") == text
    assert body_text(message, "html") == html


def test_eight_bit_bodies_still_mark_lines_starting_with_a_dot(make_email):
    """An 8bit body line starting with a dot leaves the message for the transport to dot-stuff."""
    raw = build(make_email(subject="s", html="<p>é</p>\n.caché\n", text="é\n"), eight_bit=True)
    assert leading_dot_lines(raw) and not isinstance(raw, DotSafeBytes)


def test_a_body_quoting_the_boundary_is_encoded(make_email):
    """A 7bit-able body that happens to contain the MIME boundary is encoded so the parts stay intact."""
    boundary = "=_" + hashlib.sha256(MESSAGE_ID.encode()).hexdigest()[:32]
    text = f"look:\n--{boundary}--\nstill text\n"
    message = parse(build(make_email(subject="s", html="<p>h</p>", text=text)))
    assert len(list(message.iter_parts())) == 2
    assert body_text(message, "plain") == text


def test_line_endings_are_normalized(make_email):
    """Bodies with LF, CR or CRLF line endings all go out with CRLF."""
    raw = build(make_email(subject="s", html="<p>a</p>\r<p>b</p>\r\n", text="one\rtwo\r\nthree\n"))
    assert_wellformed(raw)
    assert body_text(parse(raw), "plain") == "one\ntwo\nthree\n"


def test_message_id_is_stable_per_notice_key():
    """The same notice key gives the same Message-ID (retries keep it); another key another one."""
    first = make_message_id("past_due:acct_1:pm_1:2026-11-01:2", "example.com")
    assert first == make_message_id("past_due:acct_1:pm_1:2026-11-01:2", "example.com")
    assert first != make_message_id("past_due:acct_1:pm_1:2026-11-01:3", "example.com")
    assert first.startswith("<") and first.endswith("@example.com>")
    assert make_message_id("k", "bücher.example").endswith("@xn--bcher-kva.example>")


@pytest.mark.parametrize("overrides, header", [
    (dict(date=datetime(2026, 11, 2, 9, 30)), "Date"),
    (dict(to=[]), "To"),
    (dict(to="compta@contoso.example"), "To"),
    (dict(message_id="no-angle-brackets@example.com"), "Message-ID"),
    (dict(message_id="<a b@example.com>"), "Message-ID"),
])
def test_invalid_arguments_raise_message_error(email, overrides, header):
    """A naive date, no recipient, a bare string for To or a bad Message-ID is a MessageError."""
    with pytest.raises(MessageError) as caught:
        build(email, **overrides)
    assert caught.value.header == header


@pytest.mark.parametrize("field, value, header", [
    ("subject", "   ", "Subject"),
    ("lang", "fr_FR; x=1", "Content-Language"),
    ("text", "broken \udc80 surrogate", "text/plain body"),
])
def test_invalid_rendered_fields_raise_message_error(make_email, field, value, header):
    """An empty subject, a bad language tag or a body that is not valid Unicode is a MessageError."""
    fields = dict(subject="s", html="<p>h</p>", text="t", lang="en")
    fields[field] = value
    with pytest.raises(MessageError) as caught:
        build(make_email(**fields))
    assert caught.value.header == header


def test_building_is_fast(make_email):
    """A typical French email with a 20 kB HTML part builds in well under a millisecond."""
    html = '<tr><td style="padding:0 25px">Votre paiement de 1 234,50 € a échoué.</td></tr>\n' * 250
    email = make_email(subject="Échec du paiement de votre carte Visa •••• 4242", html=html,
                       text="Votre paiement a échoué.\n" * 30, lang="fr-FR")
    seconds = min(timeit.repeat(lambda: build(email, cc=["boss@contoso.example"]), number=100, repeat=3))
    assert seconds / 100 < 0.001


@pytest.mark.parametrize("name", ['Billing, Example Cloud', 'The "Billing" Team', "Back\\slash (ops)"])
def test_ascii_names_with_specials_are_quoted(email, name):
    """A sender name with commas, quotes or parentheses is quoted and parses back unchanged."""
    raw = build(email, from_name=name)
    assert_wellformed(raw)
    assert parse(raw)["From"].addresses[0].display_name == name
    assert len(parse(raw)["From"].addresses) == 1


def test_an_unbreakable_ascii_subject_is_encoded_to_fit(make_email):
    """An ASCII subject with a token too long for one line goes out as encoded words under 78."""
    subject = "Pay here: https://billing.example.com/settle/" + "x" * 120
    raw = build(make_email(subject=subject, html="<p>h</p>", text="t"))
    assert_wellformed(raw)
    assert parse(raw)["Subject"] == subject


@pytest.mark.parametrize("size", [1, 18, 19, 38, 57, 58, 114, 1000, 5701])
def test_base64_bodies_are_cut_in_76_character_lines(make_email, size):
    """Base64 parts run in lines of exactly 76 characters (the last one shorter) and decode unchanged."""
    html = "é" * size  # two UTF-8 octets each: sizes land on, just before and after a line boundary
    raw = build(make_email(subject="s", html=html, text="t"))
    body = raw.split(b"Content-Transfer-Encoding: base64\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
    lines = body.split(b"\r\n")
    assert all(len(line) == 76 for line in lines[:-1]) and 0 < len(lines[-1]) <= 76
    assert body_text(parse(raw), "html") == html


def test_the_same_instant_in_two_zones_keeps_each_zone_in_the_date_header(email):
    """Date shows the caller's own offset, even right after the same instant was formatted in another zone."""
    paris = datetime.fromisoformat("2026-11-02T10:30:00.250000+01:00")
    utc = datetime.fromisoformat("2026-11-02T09:30:00.750000+00:00")
    assert b"\r\nDate: Mon, 02 Nov 2026 10:30:00 +0100\r\n" in b"\r\n" + build(email, date=paris)
    assert b"\r\nDate: Mon, 02 Nov 2026 09:30:00 +0000\r\n" in b"\r\n" + build(email, date=utc)
    assert parse(build(email, date=paris))["Date"].datetime == paris.replace(microsecond=0)


def test_sender_headers_follow_each_call(email):
    """From and Reply-To reflect the arguments of every call, not those of an earlier message."""
    first = parse(build(email, from_name="Billing", reply_to="help@example.com"))
    second = parse(build(email, from_name="Accounts", reply_to=None))
    assert first["From"].addresses[0].display_name == "Billing" and first["Reply-To"] is not None
    assert second["From"].addresses[0].display_name == "Accounts" and second["Reply-To"] is None


def leading_dot_lines(raw: bytes) -> list[bytes]:
    return [line for line in raw.split(b"\r\n") if line.startswith(b".")]


@pytest.mark.parametrize("text, html", [
    (".starts with a dot\n", "<p>x</p>\n"),
    ("ok\n.\n", "<p>x</p>\n"),
    ("Votre paiement a échoué.\n" + "." * 3 + " suite\n" * 30, "<p>x</p>\n"),
    ("ok\n", "<p>x</p>\n.hidden { display: none }\n"),
])
def test_a_body_line_starting_with_a_dot_is_left_for_the_transport_to_stuff(make_email, text, html):
    """A 7bit or quoted-printable line starting with a dot marks the message as needing dot-stuffing."""
    raw = build(make_email(subject="s", html=html, text=text))
    assert leading_dot_lines(raw)
    assert isinstance(raw, CrlfBytes) and not isinstance(raw, DotSafeBytes)
    assert body_text(parse(raw), "plain") == text and body_text(parse(raw), "html") == html


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.sampled_from(".\n aé=x"), max_size=400),
       html=st.text(st.sampled_from(".\n <é>x"), max_size=400))
def test_messages_marked_dot_safe_have_no_line_starting_with_a_dot(text, html):
    """build_message only claims dot-safety (the transport then skips dot-stuffing) when it holds."""
    email = type("E", (), dict(subject="s", html=html, text=text, lang="en"))
    raw = build(email)
    assert isinstance(raw, CrlfBytes)
    if isinstance(raw, DotSafeBytes):
        assert leading_dot_lines(raw) == []
    parsed = parse(raw)
    normalized = {"plain": text, "html": html}
    for subtype, body in normalized.items():
        assert body_text(parsed, subtype) == body.replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.sampled_from(".\n aé=x"), max_size=400),
       html=st.text(st.sampled_from(".\n <€>x"), max_size=400) | st.just("<p>" + "é" * 1200 + "</p>"),
       eight_bit=st.booleans())
def test_messages_marked_ascii_are_ascii(text, html, eight_bit):
    """build_message claims its bytes are all ASCII (the transport then does not look for 8-bit bytes) exactly
    when they are: always for a server without 8BITMIME, else unless a body went as 8bit."""
    raw = build(type("E", (), dict(subject="s", html=html, text=text, lang="en")), eight_bit=eight_bit)
    assert isinstance(raw, AsciiBytes) == raw.isascii()
    assert isinstance(raw, AsciiBytes) or eight_bit


def test_a_typical_email_is_dot_safe(email):
    """An email whose bodies have no line starting with a dot needs no dot-stuffing on the wire."""
    assert isinstance(build(email), DotSafeBytes)


_BOUNDARY = "=_" + hashlib.sha256(MESSAGE_ID.encode()).hexdigest()[:32]
_PIECE = (st.text(st.sampled_from(".\n\r <é>x=_"), max_size=40)
          | st.sampled_from(["", ".", "\n", "\n.", "x" * 600, "=", "_", "a=\n", "\n=", _BOUNDARY[1:], "\n_b",
                             _BOUNDARY[:9], _BOUNDARY[9:], _BOUNDARY,
                             "x" * 450 + "\n" + "y" * 440, "\n" + "z" * 500, "é" * 300 + "\n"]))


@settings(max_examples=300, deadline=None)
@given(outputs=st.lists(st.tuples(_PIECE, st.booleans()), max_size=30), eight_bit=st.booleans())
def test_an_html_body_built_from_its_pieces_is_the_same_message(outputs, eight_bit):
    """The HTML given as its outputs (some encoded ahead) makes the same bytes as the HTML given whole, and
    claims dot-safety only when it holds: dots after a line break inside, across or between outputs, CRs,
    lines too long only once joined (outputs between two constants that each carry much of a line), the
    boundary inside an output or split across outputs."""
    html = "".join(text for text, _ in outputs)
    pieces = BodyPieces(html, [text for text, _ in outputs],
                        encoded_constants(text for text, constant in outputs if constant))
    whole = type("E", (), dict(subject="s", html=html, text="t\n", lang="en"))
    given_pieces = type("E", (), dict(subject="s", html=html, text="t\n", lang="en", html_pieces=pieces))
    raw = build(given_pieces, eight_bit=eight_bit)
    assert raw == build(whole, eight_bit=eight_bit)
    if isinstance(raw, DotSafeBytes):
        assert leading_dot_lines(raw) == []


@pytest.mark.parametrize("outputs", [
    [("<p>\n=", True), (_BOUNDARY[1:] + "\n", False)],
    [("<p>\n", True), ("a=", False), (_BOUNDARY[1:], False), ("\n</p>", True)],
    [("<p>\n", True), ("a" + _BOUNDARY[:1], False), ("", False), (_BOUNDARY[1:], True), ("\n</p>", True)],
    [("<p>\n", True), (_BOUNDARY, False), ("\n</p>", True)],
    [("<p>\n", True), (_BOUNDARY + "\n", True), ("</p>", False)],
], ids=["constant-then-value", "value-then-value", "across-an-empty-output", "in-a-value", "in-a-constant"])
def test_a_boundary_in_or_across_outputs_is_found(outputs):
    """The message's own boundary, whole or split where one output ends in "=", makes the HTML part encoded."""
    html = "".join(text for text, _ in outputs)
    pieces = BodyPieces(html, [text for text, _ in outputs],
                        encoded_constants(text for text, constant in outputs if constant))
    raw = build(type("E", (), dict(subject="s", html=html, text="t\n", lang="en", html_pieces=pieces)),
                eight_bit=True)
    assert raw == build(type("E", (), dict(subject="s", html=html, text="t\n", lang="en")), eight_bit=True)
    assert body_text(parse(raw), "html") == html
    assert raw.count(_BOUNDARY.encode()) == 4   # its three delimiter lines and the header


def test_pieces_of_another_text_are_not_used(make_email):
    """Pieces stand only for the very HTML they were joined into (an email whose HTML was replaced)."""
    pieces = BodyPieces("<p>old</p>", ["<p>old</p>"], encoded_constants(["<p>old</p>"]))
    email = type("E", (), dict(subject="s", html="<p>new</p>", text="t\n", lang="en", html_pieces=pieces))
    assert body_text(parse(build(email)), "html") == "<p>new</p>"
