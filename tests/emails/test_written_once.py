"""What the render works out once and reuses (plural forms, a plan's name in spans) writes what it wrote
each time before; attributes of dicts read in the template's own code read what the sandbox gives; the text
part's tidying reads the text as few times as it can and tidies it the same."""

from __future__ import annotations

import pytest
from babel.support import NullTranslations
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Template
from jinja2.sandbox import SecurityError
from markupsafe import Markup

from dunning.emails.folding import placeholders
from dunning.emails.jinja_env import EmailEnvironment, unit_words
from dunning.emails.render import tidy_text
from dunning.i18n.formats import Formats

_PLURAL = ("{% trans count=n, name=name %}{{ count }} invoice for {{ name }}, 100%"
           "{% pluralize %}{{ count }} invoices for {{ name }}, 100%{% endtrans %}")


def _templates(source: str) -> tuple[Template, Template]:
    """The source as an HTML and a text template of one environment (one plural filter between them)."""
    env = EmailEnvironment(NullTranslations(), Formats("en"))
    return tuple(env.template(env.compile(source, name, f"<{name}>")) for name in ("x.mjml", "x.txt"))  # type: ignore[return-value]


def test_a_translation_is_cut_around_its_named_values() -> None:
    """`%(name)s` values are cut out, `%%` is a percent sign; any other conversion is left to `%`."""
    assert placeholders("Hello %(name)s, 100%% of %(total)s.") == (("Hello ", ", 100% of ", "."),
                                                                    ("name", "total"))
    assert placeholders("no values") == (("no values",), ())
    assert placeholders("%(count)d days") is None
    assert placeholders("50% off") is None


@given(st.integers(min_value=-3, max_value=30), st.text() | st.text().map(Markup) | st.integers())
def test_a_plural_sentence_writes_what_newstyle_ngettext_writes(count: int, name: object) -> None:
    """The form for the count, its values escaped in HTML and as they are in text, the same on each render."""
    form = "%(num)s invoice for %(name)s, 100%%" if count == 1 else "%(num)s invoices for %(name)s, 100%%"
    html_form, values = Markup(form.replace("num", "count")), {"count": count, "name": name}
    html, text = _templates(_PLURAL)
    for _ in range(2):   # the second render finds the form it remembered
        assert html.render(n=count, name=name) == html_form % values
        assert text.render(n=count, name=name) == form.replace("num", "count") % values


def test_a_long_or_odd_name_in_spans_is_written_the_same_each_time() -> None:
    """A plan's name is written in spans from what was made the first time; a long one is made each time."""
    class Html:
        autoescape = True

    for value in ("Pro <Team>", "x " * 500, "Pro <Team>"):
        expected = " ".join(f'<span class="unit">{Markup.escape(word)}</span>' for word in value.split())
        assert unit_words(Html(), value) == expected and type(unit_words(Html(), value)) is Markup


def _tidy_as_written(text: str) -> str:
    """tidy_text as first written: every test over the whole text."""
    if "\t\n" in text or "\n--\n" in text or text.count(" \n") != text.count("\n-- \n"):
        text = "\n".join([line.rstrip(" \t") for line in text.split("\n")]).replace("\n--\n", "\n-- \n")
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n").rstrip() + "\n"


@given(st.lists(st.sampled_from(["a", " ", "\t", "\n", "-", "--", "-- ", "\n-- \n", "é’", ""]), max_size=14))
def test_the_text_part_is_tidied_as_before(pieces: list[str]) -> None:
    """Trailing blanks, signature separators (one, two in a row, at the start) and blank lines come out as they
    did when every line was tested."""
    text = "".join(pieces)
    assert tidy_text(text) == _tidy_as_written(text)


def test_the_signature_separator_keeps_its_space() -> None:
    """The `-- ` line alone keeps its trailing space; other lines lose theirs; blank lines collapse to one."""
    assert tidy_text("Hi \n\n\n\nBye\n-- \nACME \n") == "Hi\n\nBye\n-- \nACME\n"
    assert tidy_text("Hi\n\nBye\n-- \nACME\n") == "Hi\n\nBye\n-- \nACME\n"


def test_attributes_read_in_the_template_code_are_what_the_sandbox_gives() -> None:
    """`a.b` on a dict is its item, nested, in loops, macros and calls alike; a key named like a dict method
    wins over the method; on anything else the sandbox decides (an unsafe attribute is refused)."""
    source = ("{% macro m(x) %}[{{ x.id }}]{% endmacro %}{{ a.b.c }}|{% for i in a.items %}{{ i.id }}{{ m(i) }}"
              "{% endfor %}|{{ a.b.c ~ a.b.d.e }}|{{ s.upper() }}|{{ n.real }}|{{ a.missing is defined }}")
    html, text = _templates(source)
    values = {"a": {"b": {"c": "C&", "d": {"e": "E"}}, "items": [{"id": 1}, {"id": 2}]}, "s": "x", "n": 3}
    assert html.render(**values) == "C&amp;|1[1]2[2]|C&amp;E|X|3|False"
    assert text.render(**values) == "C&|1[1]2[2]|C&E|X|3|False"
    with pytest.raises(SecurityError):
        text.environment.from_string("{{ s.__class__.__mro__ }}").render(s="x")
