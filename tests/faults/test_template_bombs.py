"""Templates that would build a huge value before writing any of it: `"x" * 10**8`, `10 ** (10 ** 8)`, a
namespace doubled with `~`, `"x" | center(10**9)`, a list that holds one list twice, forty times over. Each
is refused where the value would be built, with a template error naming the line and
delivery.max_message_bytes, in a real `dunning` process whose peak memory the kernel measures, and in
bounded time; `*`, `**`, `+`, `%` and `~` on small values still render."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dunning import store
from dunning.emails.render import Renderer
from dunning.emails.scenarios import load_scenarios
from dunning.errors import EmailTooLarge
from tests.faults.test_memory import MB, Measured, dunning
from tests.run.conftest import AS_OF_TEXT, billing, smtp

__all__ = ["billing", "smtp"]  # fixtures used by name

REPO = Path(__file__).resolve().parents[2]
LIMIT = 10 * MB                     # delivery.max_message_bytes's default
GROWTH = 48 * MB                    # what a refused template may add to the peak of linting the shipped ones
SECONDS = 60                        # a process still running then is killed: `10 ** (10 ** 8)` would run for hours
TOO_LARGE = f"would make a value of more than {LIMIT} characters (delivery.max_message_bytes)"
BOMBS = {
    "repeat": ('{{ "x" * 10**8 }}', f"`*` {TOO_LARGE}"),
    "power": ("{{ 10 ** (10 ** 8) }}", "`**` would make an integer of more than 4300 digits (more than Python writes)"),
    # 27 doublings: 128 M characters, which no output check sees (only the length is written)
    "doubling": ('{% set ns = namespace(s="x") %}{% for i in range(27) %}{% set ns.s = ns.s ~ ns.s %}'
                 "{% endfor %}{{ ns.s|length }}", f"`~` {TOO_LARGE}"),
    "center": ('{{ "x" | center(10**9) }}', f"center {TOO_LARGE}"),
    # a list holding one list twice, forty times over: a few hundred bytes whose text has 2**40 numbers
    "shared": ("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
               "{{ ns.a }}", f"writing a list {TOO_LARGE}"),
}


def _templates(tmp_path: Path, content: str) -> Path:
    """A copy of the shipped templates, past_due's text starting (its line 3) with content."""
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "emails", templates)
    text = templates / "past_due.txt"
    text.write_text(text.read_text().replace("{% block content %}", "{% block content %}" + content, 1))
    return templates


def _lint(templates: Path) -> Measured:
    return dunning("lint", timeout=SECONDS, env={"DUNNING_I18N__TEMPLATES_DIR": str(templates),
                                                 "DUNNING_I18N__LOCALES_DIR": str(REPO / "locales")})


@pytest.fixture(scope="module")
def shipped_peak() -> int:
    """The peak memory of linting the shipped templates."""
    ran = _lint(REPO / "templates" / "emails")
    assert ran.code == 0, ran.out
    return ran.peak


@pytest.mark.parametrize("bomb", BOMBS)
def test_lint_refuses_a_huge_value_where_it_would_be_built(bomb, shipped_peak, tmp_path):
    """One lint line for every locale and scenario, at the template line; memory and time stay bounded."""
    content, says = BOMBS[bomb]
    templates = _templates(tmp_path, content)
    started = time.monotonic()
    ran = _lint(templates)
    assert time.monotonic() - started < SECONDS
    assert ran.code == 1, ran.out + ran.err
    errors = [line for line in ran.out.splitlines() if "past_due" in line]
    assert len(errors) == 1 and "1 error(s)" in ran.out, ran.out
    assert f"past_due.txt:3: past_due: past_due.txt line 3: {says} [" in errors[0], ran.out
    assert ran.peak < shipped_peak + GROWTH, (ran.peak, shipped_peak)


def test_a_run_refuses_a_huge_value_before_it_writes_or_sends_anything(billing, smtp, tmp_path):
    """Exit 65 (a template error), naming the template line; no email written, none sent."""
    templates = _templates(tmp_path, BOMBS["repeat"][0])
    ran = dunning("run", "--json", "--as-of", AS_OF_TEXT, timeout=SECONDS,
                  env={"DUNNING_I18N__TEMPLATES_DIR": str(templates),
                       "DUNNING_I18N__LOCALES_DIR": str(REPO / "locales")})
    assert ran.code == 65 and ran.out == "", ran.err
    assert len(ran.err.splitlines()) == 1 and f"past_due: past_due.txt line 3: `*` {TOO_LARGE}" in ran.err, ran.err
    assert smtp.messages == []
    with store.connect(billing, migrate=False).connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.emails)).scalar() == 0


def _render(tmp_path: Path, content: str, limit: int) -> str:
    templates = _templates(tmp_path, content)
    scenario = next(s for s in load_scenarios(templates) if s.notice == "past_due")
    renderer = Renderer(templates, REPO / "locales", cache_dir=False, max_output=limit)
    return renderer.render("past_due", "en", scenario.context).text


def test_small_values_render_and_a_value_up_to_the_bound_is_built(tmp_path):
    """`*`, `**`, `+`, `%`, `~` and the padding filters as templates use them; a value of exactly the bound is
    built (only its length written), one character more is refused at its line."""
    small = ('{{ 3 * 4 }} {{ 2 ** 10 }} {{ 1.5 * 2 }} {{ "ab" * 3 }} {{ "=" * 8 }} {{ [1, 2] + [3] }} '
             '{{ "%05.1f" % 3.14159 }} {{ "a" ~ 1 }} [{{ "x"|center(5) }}] {{ "%s-%s"|format(1, 2) }}\n'
             '{{ ("x" * 100000)|length }} {{ ("ab" * 49999 + "xx")|length }}\n')
    text = _render(tmp_path / "small", small, 100_000)
    assert "12 1024 3.0 ababab ======== [1, 2, 3] 003.1 a1 [  x  ] 1-2\n100000 100000\n" in text
    with pytest.raises(EmailTooLarge) as refused:
        _render(tmp_path / "past", '{{ ("x" * 100001)|length }}', 100_000)
    assert refused.value.line == 3 and refused.value.template == "past_due.txt"
    assert str(refused.value) == ("past_due: past_due.txt line 3: `*` would make a value of more than 100000 "
                                  "characters (delivery.max_message_bytes)")


_SHARED = ("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
           "{% set a = ns.a %}")


@pytest.mark.parametrize(("content", "says"), [
    ('{{ "x".center(10**9) }}', "str.center"),
    ('{{ "x".ljust(10**9) }}', "str.ljust"),
    ('{{ "{:>1000000000}".format(1) }}', "str.format"),
    ('{{ "{:>{w}}".format(1, w=10**9) }}', "str.format"),
    ('{{ ("x" * 1000).join(range(100000)|map("string")) }}', "str.join"),
    ('{{ ("x" * 10**7).replace("x", "yy") }}', "str.replace"),
    ('{{ "%*s" % (10**9, "x") }}', "`%`"),
    ('{{ range(100000)|join("x" * 1000) }}', "join"),
    ('{{ ("x\n" * 10**6)|indent(100) }}', "indent"),
    ('{{ [("x" * 10**7)] * 2 }}', "`*`"),
    ('{{ "x" * 1000000000 }}', "`*`"),              # constants: not folded when the template is compiled
    ('{{ "x"|center(1000000000) }}', "center"),
    (_SHARED + "{{ a }}", "writing a list"),
    (_SHARED + "{{ a|string }}", "string"),
    (_SHARED + "{{ a|e }}", "escape"),
    (_SHARED + "{{ a|tojson }}", "tojson"),
    (_SHARED + "{{ a|pprint }}", "pprint"),
    (_SHARED + '{{ a|join(",") }}', "join"),
    ("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a]|sum(start=[]) %}"
     "{% endfor %}{{ ns.a|length }}", "sum"),
    ('{{ ([1]|batch(10**9, "x")|first)|length }}', "batch"),
    ('{{ ([1]|slice(10**9)|list)|length }}', "slice"),
    ('{{ (("x" * 10**7)|list)|length }}', "list"),
    ("{{ lipsum(10**6)|length }}", "lipsum"),
], ids=["center", "ljust", "format", "format-nested", "str.join", "replace", "percent", "join", "indent", "list",
        "constant", "constant-filter", "shared-list", "shared-string", "shared-escape", "shared-tojson",
        "shared-pprint", "shared-join", "sum", "batch", "slice", "list-of-text", "lipsum"])
def test_the_str_methods_and_other_operations_that_grow_text_are_refused(tmp_path, content, says):
    with pytest.raises(EmailTooLarge) as refused:
        _render(tmp_path, content, LIMIT)
    assert str(refused.value) == f"past_due: past_due.txt line 3: {says} {TOO_LARGE}"


def test_a_namespace_is_not_written_as_text(tmp_path):
    """A namespace's text holds its attributes' (a shared list among them): writing one is refused at its line,
    writing one of its attributes is not."""
    with pytest.raises(EmailTooLarge) as refused:
        _render(tmp_path / "whole", _SHARED + "{{ ns }}", LIMIT)
    assert str(refused.value) == ("past_due: past_due.txt line 3: a namespace written as text: write one of its "
                                  "attributes")
    assert _render(tmp_path / "one", "{% set ns = namespace(a=2) %}{{ ns.a }} x\n", LIMIT).startswith("2 x\n")
