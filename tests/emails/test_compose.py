"""Compile-time composition (extends, blocks, includes), text layout rules, and MJML tag protection."""

from __future__ import annotations

from pathlib import Path

import pytest

from dunning.compiler import compile_mjml, compile_notice
from dunning.compose import Composer, join
from dunning.errors import TemplateError
from dunning.jinja_env import EmailEnvironment

from .conftest import write_tree

ENV = EmailEnvironment()


def _flat(root: Path, name: str, *, text: bool = True) -> str:
    return join(Composer(ENV, root, text=text).compose(name)[0]).text


def test_blocks_of_the_nearest_child_win_and_defaults_stay(tmp_path: Path) -> None:
    """Across three levels of extends, the lowest template's block wins; unfilled blocks keep their default."""
    write_tree(tmp_path, {
        "base.txt": "[{% block a %}base-a{% endblock %}|{% block b %}base-b{% endblock %}]",
        "middle.txt": '{% extends "base.txt" %}{% block a %}middle-a{% endblock %}{% block b %}middle-b{% endblock %}',
        "leaf.txt": '{% extends "middle.txt" %}ignored{% block a %}leaf-a{% endblock %}',
    })
    assert _flat(tmp_path, "leaf.txt") == "[leaf-a|middle-b]"


def test_includes_are_inlined_once_per_use(tmp_path: Path) -> None:
    """A partial included twice appears twice, with its own tags kept for rendering."""
    write_tree(tmp_path, {"page.txt": '{% include "_p.txt" %}/{% include "_p.txt" %}', "_p.txt": "{{ x }}\n"})
    assert _flat(tmp_path, "page.txt") == "{{ x }}/{{ x }}"


def test_a_line_holding_only_silent_tags_leaves_no_line(tmp_path: Path) -> None:
    """In text templates `{% if %}` and `{% endif %}` on their own lines vanish with their line breaks."""
    write_tree(tmp_path, {"t.txt": "A\n{% if x %}\n  {% if y %}\nB\n  {% endif %}\n{% endif %}\nC\n"})
    template = ENV.from_string(_flat(tmp_path, "t.txt"))
    assert template.render(x=True, y=True) == "A\nB\nC"
    assert template.render(x=False, y=True) == "A\nC"


def test_a_line_with_output_keeps_its_line_break(tmp_path: Path) -> None:
    """A {% trans %} or {{ }} line is text, so its line break stays."""
    write_tree(tmp_path, {"t.txt": "{% trans %}One{% endtrans %}\n{{ two }}\n{% if x %}3{% endif %}\nend"})
    assert ENV.from_string(_flat(tmp_path, "t.txt")).render(two=2, x=True, gettext=str) == "One\n2\n3\nend"


def test_a_template_that_includes_itself_is_refused(tmp_path: Path) -> None:
    """A cycle of includes is reported instead of recursing forever."""
    write_tree(tmp_path, {"a.txt": '{% include "b.txt" %}', "b.txt": '{% include "a.txt" %}'})
    with pytest.raises(TemplateError, match="includes itself"):
        _flat(tmp_path, "a.txt")


def test_an_include_needs_a_literal_name(tmp_path: Path) -> None:
    """A computed include cannot be composed at compile time and is refused with its line."""
    write_tree(tmp_path, {"a.txt": "x\n{% include name %}"})
    with pytest.raises(TemplateError) as caught:
        _flat(tmp_path, "a.txt")
    assert (caught.value.template, caught.value.line) == ("a.txt", 2)


def test_template_names_cannot_leave_the_templates_directory(tmp_path: Path) -> None:
    """An include of ../ is refused rather than read."""
    write_tree(tmp_path, {"t/a.txt": '{% include "../secret.txt" %}', "secret.txt": "s"})
    with pytest.raises(TemplateError, match="cannot read template"):
        _flat(tmp_path / "t", "a.txt")


def test_each_tag_knows_its_template_and_line(tmp_path: Path) -> None:
    """The flat source maps its lines back to the partial and line each tag was written on."""
    write_tree(tmp_path, {"page.txt": 'Title\n{% include "_p.txt" %}\n{{ after }}', "_p.txt": "one\n{{ inner }}\n"})
    source = join(Composer(ENV, tmp_path, text=True).compose("page.txt")[0])
    assert source.text == "Title\none\n{{ inner }}\n{{ after }}"
    assert source.origin(3) == ("_p.txt", 2) and source.origin(4) == ("page.txt", 3)


def test_tags_in_attributes_survive_mjml_even_with_quotes(tmp_path: Path) -> None:
    """Jinja expressions holding quotes and `>` inside MJML attributes and text come back unchanged."""
    mjml = ('<mjml><mj-body><mj-section><mj-column>'
            '<mj-button href="{{ "https://x.example/?a=" ~ (a > 1) }}">{{ "Pay" if a > 1 else "Go" }}</mj-button>'
            '<mj-text>{% if a > 1 %}<b>big</b>{% endif %}</mj-text>'
            '</mj-column></mj-section></mj-body></mjml>')
    write_tree(tmp_path, {"n.mjml": mjml})
    units, _ = Composer(ENV, tmp_path, text=False).compose("n.mjml")
    html = compile_mjml(units, "n.mjml").text
    assert 'href="{{ "https://x.example/?a=" ~ (a > 1) }}"' in html
    assert '{{ "Pay" if a > 1 else "Go" }}' in html and "{% if a > 1 %}<b>big</b>{% endif %}" in html


def test_mj_include_is_refused_with_advice(tmp_path: Path) -> None:
    """<mj-include> would bypass tag protection, so the compile asks for {% include %} instead."""
    write_tree(tmp_path, {"n.mjml": '<mjml><mj-body><mj-include path="x.mjml" /></mj-body></mjml>', "n.txt": "x"})
    with pytest.raises(TemplateError, match="use {% include"):
        compile_notice(ENV, tmp_path, "n")


def test_subject_and_preheader_are_kept_apart_from_the_html(tmp_path: Path) -> None:
    """The subject and preheader blocks become their own sources and are not written into the body."""
    write_tree(tmp_path, {
        "_layout.mjml": "<mjml><mj-body>{% block content %}{% endblock %}</mj-body></mjml>",
        "n.mjml": '{% extends "_layout.mjml" %}{% block subject %}SUBJ {{ a }}{% endblock %}'
                  '{% block preheader %}PRE{% endblock %}'
                  '{% block content %}<mj-section><mj-column><mj-text>BODY</mj-text></mj-column></mj-section>'
                  '{% endblock %}',
        "n.txt": "TEXT",
    })
    compiled = compile_notice(ENV, tmp_path, "n")
    assert (compiled.subject.text, compiled.preheader.text, compiled.text.text) == ("SUBJ {{ a }}", "PRE", "TEXT")
    assert "BODY" in compiled.html.text and "SUBJ" not in compiled.html.text
    assert {path.name for path in compiled.files} == {"_layout.mjml", "n.mjml", "n.txt"}
