"""The subject remembered by the values it reads: the same text as rendering it, never a stale one."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from babel.support import NullTranslations

from dunning.emails.jinja_env import EmailEnvironment
from dunning.emails.memo import Memo, read_names
from dunning.emails.render import Renderer
from dunning.errors import TemplateError
from dunning.i18n.formats import Formats

ENV = EmailEnvironment(NullTranslations(), Formats("en"), {"lang": "en"})


def _names(source: str) -> tuple[str, ...] | None:
    return read_names(ENV, ENV.folded(ENV.parse(source)))


def test_the_names_a_part_reads_come_from_its_folded_tree() -> None:
    """Names it loads (one it sets too: more than it reads, never fewer); a date filter's time zone; not
    the translations and constants folded into text."""
    assert _names("{% set x = 1 %}{{ x }}{{ stage }}{{ _('Hi') }} {{ lang }}") == ("stage", "x")
    assert _names("{{ due|date }} {{ account.name }}") == ("account", "due", "timezone")


@pytest.mark.parametrize("source", ['{% include "x.txt" %}', '{% import "m.txt" as m %}{{ m.x }}',
                                    "{{ [1, 2]|random }}"])
def test_a_part_whose_reads_cannot_be_told_is_not_remembered(source: str) -> None:
    """An include or import reads names of another template; a random filter differs from call to call."""
    assert _names(source) is None


@pytest.mark.parametrize("value", [1, True, None, "1", date(2026, 12, 7)])
def test_plain_values_make_a_key_with_their_type(value: object) -> None:
    """True and 1 are equal in Python but written differently: the key keeps them apart."""
    key = Memo(("stage",)).key({"stage": value})
    assert key is not None and key[1] is type(value)


@pytest.mark.parametrize("value", [datetime(2026, 12, 7, tzinfo=UTC), Decimal("1.0"), [1], {"a": 1}])
def test_other_values_are_rendered_every_time(value: object) -> None:
    """A datetime (equal across zones), a Decimal (trailing zeros), a list or a mapping makes no key; nor a
    missing name."""
    memo = Memo(("stage",))
    assert memo.key({"stage": value}) is None and memo.key({}) is None
    calls = []
    for _ in range(2):
        memo.text({"stage": value}, lambda: calls.append(1) or "x")
    assert len(calls) == 2 and not memo.texts


SUBJECT_TREE = {
    "note.mjml": """\
        {% extends "_layout.mjml" %}
        {% block subject %}{% if final_stage %}Last notice{% else %}Stage {{ stage }}{% endif %}{% endblock %}
        {% block preheader %}p{% endblock %}
        """,
    "note.txt": "Hello\n",
}


def test_a_remembered_subject_is_the_one_each_email_would_get(tree, scenario) -> None:
    """Emails whose stages come and go get each its own subject; a value of another type another text."""
    templates, locales = tree(SUBJECT_TREE)
    renderer = Renderer(templates, locales)
    context = scenario("past_due--stage-1-card")
    seen = []
    for final, stage in [(False, 1), (False, 2), (True, 2), (False, 1), (False, True), (False, 2)]:
        seen.append(renderer.render("note", "en", {**context, "final_stage": final, "stage": stage}).subject)
    assert seen == ["Stage 1", "Stage 2", "Last notice", "Stage 1", "Stage True", "Stage 2"]


def test_a_failed_subject_fails_every_email(tree, scenario) -> None:
    """A failure is never remembered: the next email with the same values fails the same way."""
    templates, locales = tree(SUBJECT_TREE)
    renderer = Renderer(templates, locales)
    context = {k: v for k, v in scenario("past_due--stage-1-card").items() if k != "stage"}
    for _ in range(2):
        with pytest.raises(TemplateError, match="stage"):
            renderer.render("note", "en", {**context, "final_stage": False})
