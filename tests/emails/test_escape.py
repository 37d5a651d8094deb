"""Outputs of HTML templates are escaped as markupsafe escapes them, once, however they are produced."""

from __future__ import annotations

from decimal import Decimal

from babel.support import NullTranslations
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup, escape

from dunning.emails.jinja_env import EmailEnvironment, escape_output
from dunning.i18n.formats import Formats


@given(st.text() | st.integers() | st.decimals(allow_nan=False) | st.none() | st.text().map(Markup))
def test_escape_output_writes_what_markupsafe_writes(value: object) -> None:
    """Text, numbers, None and Markup come out as str(markupsafe.escape(value))."""
    assert escape_output(value) == str(escape(value))


def test_a_template_escapes_each_output_once() -> None:
    """Plain text, Markup from a filter, a {% set %} block and a trans block are each escaped exactly once."""
    env = EmailEnvironment(NullTranslations(), Formats("en"))
    source = ('{{ name }}|{{ name|e }}|{{ safe }}|{% set held %}<b>{{ name }}</b>{% endset %}{{ held }}|'
              '{{ amount }}|{% trans n=name %}Hi {{ n }}{% endtrans %}')
    template = env.template(env.compile(source, "x.mjml", "<x.mjml>"))
    out = template.render(name="A&B <i>", safe=Markup("<em>ok</em>"), amount=Decimal("1.50"))
    assert out == ("A&amp;B &lt;i&gt;|A&amp;B &lt;i&gt;|<em>ok</em>|<b>A&amp;B &lt;i&gt;</b>|1.50|"
                   "Hi A&amp;B &lt;i&gt;")


def test_a_translated_sentence_between_template_text_is_written_as_one_piece() -> None:
    """Text, a folded {% trans %} and text again render as before, and come out of the template as one output."""
    env = EmailEnvironment(NullTranslations(), Formats("en"))
    source = "<p>{% trans %}Pay now{% endtrans %}</p><i>{% trans n=name %}Hi {{ n }}{% endtrans %}</i>"
    template = env.template(env.compile(source, "x.mjml", "<x.mjml>"))
    context = template.new_context({"name": "A&B"}, shared=True)
    assert list(template.root_render_func(context)) == ["<p>Pay now</p><i>Hi ", "A&amp;B", "</i>"]


def test_a_loop_that_writes_constant_text_a_set_number_of_times_is_written_when_compiled() -> None:
    """`{% for pad in range(3) %}ab{% endfor %}` becomes the text written three times, one output, no call;
    a loop over a count the email gives is left to run."""
    env = EmailEnvironment(NullTranslations(), Formats("en"))
    source = "{{ name }}{% for pad in range(3) %}ab{% endfor %}!{% for i in range(n) %}c{% endfor %}"
    template = env.template(env.compile(source, "x.mjml", "<x.mjml>"))
    context = template.new_context({"name": "A&B", "n": 2})
    assert list(template.root_render_func(context)) == ["A&amp;B", "ababab!", "c", "c"]


def test_a_loop_that_would_write_a_long_constant_text_is_left_to_run() -> None:
    """A loop whose text, repeated, would pass a few kilobytes stays a loop (bounded as it renders, never
    built whole when the template is compiled); so does one over a count too large to fold."""
    env = EmailEnvironment(NullTranslations(), Formats("en"))
    source = "{% for i in range(1000) %}" + "x" * 100 + "{% endfor %}{% for i in range(5000) %}y{% endfor %}"
    template = env.template(env.compile(source, "x.mjml", "<x.mjml>"))
    context = template.new_context({})
    outputs = list(template.root_render_func(context))
    assert len(outputs) == 1000 + 5000 and "".join(outputs) == "x" * 100_000 + "y" * 5000
