"""A template whose loop does not end is stopped by the render's deadline, and renders again once fixed."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from dunning.emails.render import Renderer
from dunning.emails.scenarios import load_scenarios
from dunning.errors import TemplateError

REPO = Path(__file__).resolve().parents[2]
ENDLESS = {  # 10^10 iterations each
    "silent": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "writing": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
}


@pytest.mark.parametrize("loop", sorted(ENDLESS))
def test_an_endless_loop_is_stopped_by_the_deadline_and_the_fixed_template_renders(tmp_path, loop):
    templates, locales = tmp_path / "templates", tmp_path / "locales"
    shutil.copytree(REPO / "templates" / "emails", templates)
    shutil.copytree(REPO / "locales", locales)
    scenario = next(s for s in load_scenarios(templates) if s.name.startswith("past_due"))
    text = templates / "past_due.txt"
    shipped = text.read_text()
    text.write_text(shipped.replace("{% block content %}", "{% block content %}" + ENDLESS[loop], 1))
    renderer = Renderer(templates, locales, reload_interval=0, cache_dir=False, render_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"rendering took longer than 0.2 s \(i18n.render_seconds\)"):
        renderer.render("past_due", "en", scenario.context)
    assert time.monotonic() - started < 5
    text.write_text(shipped)
    assert renderer.render("past_due", "en", scenario.context).text
