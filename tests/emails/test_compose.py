"""Compile-time composition (extends, blocks, includes), text layout rules, and MJML tag protection."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from mjml import mjml_to_html

from dunning.emails.compiler import compile_mjml, compile_notice
from dunning.emails.compose import Composer, join
from dunning.emails.jinja_env import EmailEnvironment
from dunning.errors import TemplateError

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


class _Reading(HTMLParser):
    """What a browser makes of a document's markup and text, blanks collapsed as HTML collapses them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple] = []

    @staticmethod
    def _collapse(text: str | None) -> str | None:
        return None if text is None else " ".join(text.replace("\u00a0", "\x00").split()).replace("\x00", "\u00a0")

    def handle_starttag(self, tag, attrs):
        self.tokens.append(("<", tag, tuple((name, self._collapse(value)) for name, value in attrs)))

    def handle_endtag(self, tag):
        self.tokens.append(("</", tag))

    def handle_data(self, data):
        if data.strip(" \t\r\n"):
            self.tokens.append(("text", self._collapse(data)))
        elif self.tokens and self.tokens[-1] != ("blank",):
            self.tokens.append(("blank",))

    def handle_comment(self, data):  # Outlook reads the HTML inside conditional comments
        self.tokens.append(("<!--", self._collapse(data)))


def _reading(html: str) -> list[tuple]:
    parser = _Reading()
    parser.feed(html.strip())
    parser.close()
    return parser.tokens


def _mjml_body(content: str, head: str = "") -> str:
    return f"<mjml><mj-head>{head}</mj-head><mj-body>{content}</mj-body></mjml>"


def test_mjml_layout_blanks_are_dropped_and_the_document_reads_the_same(tmp_path: Path) -> None:
    """Indentation, trailing blanks and blank lines go; markup, attributes, text and no-break spaces stay;
    no line starts with a dot (which SMTP would have to double), CSS rules included."""
    mjml = _mjml_body(
        '<mj-section><mj-column><mj-text>Pay   <b>now</b>\n      or\u00a0\u00a0later,\n\u00a0 {{ name }}</mj-text>'
        '<mj-button href="{{ url }}">Settle\n      the balance</mj-button></mj-column>'
        '<mj-column><mj-table><tr>\n   <td>{{ total }}</td>\n\n   <td> € </td></tr></mj-table></mj-column>'
        '</mj-section>', head='<mj-style>\n  .total { font-weight: bold; }\n  .due {\n    color: red; }</mj-style>')
    write_tree(tmp_path, {"n.mjml": mjml})
    units, _ = Composer(ENV, tmp_path, text=False).compose("n.mjml")
    html = compile_mjml(units, "n.mjml").text
    as_written = mjml_to_html(mjml).html
    assert ".total {" in html and "\n." not in html

    assert _reading(html) == _reading(as_written)
    assert all((line == line.strip(" \t") or line.startswith(" .")) and line for line in html.split("\n"))
    assert "or\u00a0\u00a0later" in html and "\u00a0 {{ name }}" in html and 'href="{{ url }}"' in html
    assert len(html) < 0.8 * len(as_written)


@pytest.mark.parametrize("keeper", [
    '<mj-raw><pre>  total:\n      12.00</pre></mj-raw>',
    '<mj-raw><textarea>  total:\n      12.00</textarea></mj-raw>',
    '<mj-text css-class="amounts">  total:\n      12.00</mj-text>',
])
def test_documents_that_keep_blanks_as_written_are_left_alone(tmp_path: Path, keeper: str) -> None:
    """<pre>, <textarea> and CSS white-space: pre… show blanks as written: such a document is not squeezed."""
    head = '<mj-style>.amounts div { white-space: pre-line; }</mj-style>' if "css-class" in keeper else ""
    mjml = _mjml_body(f"<mj-section><mj-column>{keeper}</mj-column></mj-section>", head)
    write_tree(tmp_path, {"n.mjml": mjml})
    units, _ = Composer(ENV, tmp_path, text=False).compose("n.mjml")
    assert compile_mjml(units, "n.mjml").text == mjml_to_html(mjml).html
