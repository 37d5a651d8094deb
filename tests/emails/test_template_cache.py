"""Compiled templates kept on disk: a new process renders the same emails at once, and never a stale one."""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import dunning.emails.render
from dunning.emails import template_cache
from dunning.emails.jinja_env import EmailEnvironment
from dunning.emails.render import Renderer
from dunning.errors import TemplateError
from dunning.vocabulary import NOTICES

from .conftest import LOCALES, REPO, SHIPPED_LOCALES, TEMPLATES, scenario_names


@pytest.fixture
def copied(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the shipped templates and catalogs that a test may edit."""
    templates, locales = tmp_path / "templates", tmp_path / "locales"
    shutil.copytree(TEMPLATES, templates)
    shutil.copytree(LOCALES, locales)
    return templates, locales


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Every MJML build and Jinja compile the renderer makes, recorded."""
    calls: dict[str, list] = {"mjml": [], "jinja": []}
    build, jinja = dunning.emails.render.compile_notice, EmailEnvironment.compile
    monkeypatch.setattr(dunning.emails.render, "compile_notice",
                        lambda env, root, notice: calls["mjml"].append(notice) or build(env, root, notice))
    monkeypatch.setattr(EmailEnvironment, "compile",
                        lambda env, source, name=None, *args:
                        calls["jinja"].append(name) or jinja(env, source, name, *args))
    return calls


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_a_new_renderer_renders_every_email_the_same_without_compiling(tmp_path: Path, scenario, compiles) -> None:
    """Over a filled cache, every notice × locale × scenario equals a cache-less render, and nothing is compiled."""
    jobs = [(name.split("--")[0], locale, name)
            for name, locale in itertools.product(scenario_names(), SHIPPED_LOCALES)]
    first = Renderer(TEMPLATES, LOCALES, cache_dir=tmp_path / "cache")
    for notice, locale, name in jobs:
        first.render(notice, locale, scenario(name))
    assert len(compiles["mjml"]) == len(NOTICES)
    assert len(compiles["jinja"]) == 4 * len(NOTICES) * len(SHIPPED_LOCALES)
    compiles["mjml"].clear(), compiles["jinja"].clear()
    cached = Renderer(TEMPLATES, LOCALES, cache_dir=tmp_path / "cache")
    cached_emails = [cached.render(notice, locale, scenario(name)) for notice, locale, name in jobs]
    assert compiles == {"mjml": [], "jinja": []}
    plain = Renderer(TEMPLATES, LOCALES, cache_dir=False)
    assert cached_emails == [plain.render(notice, locale, scenario(name)) for notice, locale, name in jobs]


def test_a_cached_template_still_names_the_line_of_a_render_error(tree, scenario, tmp_path: Path, compiles) -> None:
    """A missing value in code read from the cache is reported at the partial and line that used it."""
    templates, locales = tree({
        "broken.mjml": '{% extends "_layout.mjml" %}\n{% block content %}{% include "_part.mjml" %}{% endblock %}\n',
        "_part.mjml": "<mj-section><mj-column>\n<mj-text>\n{{ account.nickname }}\n</mj-text>\n"
                      "</mj-column></mj-section>\n",
        "broken.txt": "x",
    })
    errors = []
    for _ in range(2):
        with pytest.raises(TemplateError) as caught:
            Renderer(templates, locales, cache_dir=tmp_path / "cache").render("broken", "en",
                                                                            scenario("past_due--stage-1-card"))
        errors.append((caught.value.template, caught.value.line, caught.value.locale))
    assert errors == [("_part.mjml", 3, "en")] * 2 and compiles["mjml"] == ["broken"]


def test_an_edited_partial_is_rebuilt_by_the_next_process(copied, scenario, tmp_path: Path, compiles) -> None:
    """A partial whose text changed makes the next renderer build again (same mtime or not) and show the edit."""
    templates, locales = copied
    context = scenario("past_due--stage-1-card")
    Renderer(templates, locales, cache_dir=tmp_path / "cache").render("past_due", "fr", context)
    _edit(templates / "_layout.mjml", "{{ branding.company }} ·", "ACME-42 ·")
    email = Renderer(templates, locales, cache_dir=tmp_path / "cache").render("past_due", "fr", context)
    assert "ACME-42" in email.html and compiles["mjml"] == ["past_due", "past_due"]


def test_an_edited_catalog_is_compiled_again_by_the_next_process(copied, scenario, tmp_path: Path) -> None:
    """A .po edit shows in the next renderer's emails although the templates' code for that locale is cached."""
    templates, locales = copied
    context = scenario("past_due--stage-1-card")
    Renderer(templates, locales, cache_dir=tmp_path / "cache").render("past_due", "fr", context)
    _edit(locales / "fr" / "LC_MESSAGES" / "messages.po", 'msgstr "Bonjour %(name)s,"', 'msgstr "Salut %(name)s,"')
    email = Renderer(templates, locales, cache_dir=tmp_path / "cache").render("past_due", "fr", context)
    assert "Salut Acme Analytics AB," in email.text and "Salut <span" in email.html


def test_an_edit_within_one_process_still_shows_on_the_next_render(copied, scenario, tmp_path: Path) -> None:
    """With a cache, a running renderer picks up a template edit and a .po edit on the next email."""
    templates, locales = copied
    context = scenario("past_due--stage-1-card")
    renderer = Renderer(templates, locales, reload_interval=0, cache_dir=tmp_path / "cache")
    renderer.render("past_due", "fr", context)
    _edit(templates / "_layout.mjml", "{{ branding.company }} ·", "ACME-42 ·")
    _edit(locales / "fr" / "LC_MESSAGES" / "messages.po", 'msgstr "Bonjour %(name)s,"', 'msgstr "Salut %(name)s,"')
    email = renderer.render("past_due", "fr", context)
    assert "ACME-42" in email.html and "Salut Acme Analytics AB," in email.text


def test_a_build_is_shared_by_processes_naming_the_templates_differently(copied, tmp_path: Path, monkeypatch,
                                                                        compiles) -> None:
    """A renderer reaching the same templates by another relative path takes the build, with its own file paths."""
    templates, locales = copied
    monkeypatch.chdir(tmp_path)
    Renderer(Path("templates"), locales, cache_dir=tmp_path / "cache").compile("past_due")
    monkeypatch.chdir(templates)
    compiled = Renderer(Path("."), locales, cache_dir=tmp_path / "cache").compile("past_due")
    assert compiles["mjml"] == ["past_due"]
    assert Path("_layout.mjml") in compiled.files and all(path.is_file() for path in compiled.files)


def test_damaged_entries_are_compiled_again(tmp_path: Path, scenario, compiles) -> None:
    """Entries cut short or with flipped bytes are misses: the email is still right, from a fresh compile."""
    context = scenario("past_due--stage-1-card")
    expected = Renderer(TEMPLATES, LOCALES, cache_dir=tmp_path / "cache").render("past_due", "de", context)
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    for index, path in enumerate(entries):
        data = bytearray(path.read_bytes())
        if index % 2:
            data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data) if index % 2 else bytes(data[:len(data) // 2]))
    compiles["mjml"].clear(), compiles["jinja"].clear()
    assert Renderer(TEMPLATES, LOCALES, cache_dir=tmp_path / "cache").render("past_due", "de", context) == expected
    assert compiles["mjml"] == ["past_due"] and len(compiles["jinja"]) == 4


def test_entries_replace_their_older_versions(copied, scenario, tmp_path: Path) -> None:
    """Editing a template again and again leaves the cache with as many files as before."""
    templates, locales = copied
    context = scenario("past_due--stage-1-card")
    counts = []
    for _ in range(3):
        _edit(templates / "_layout.mjml", "{{ branding.company }} ·", "{{ branding.company }} · ·")
        Renderer(templates, locales, cache_dir=tmp_path / "cache").render("past_due", "fr", context)
        counts.append(len(list((tmp_path / "cache").iterdir())))
    assert counts[0] == counts[1] == counts[2]


def test_a_cache_others_may_write_is_not_used(tmp_path: Path, scenario, caplog: pytest.LogCaptureFixture) -> None:
    """Entries are code: a cache directory others may write to is refused (with a warning); emails still render."""
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="dunning.emails.template_cache"):
        renderer = Renderer(TEMPLATES, LOCALES, cache_dir=cache)
    assert renderer.cache is None and any("not private" in r.getMessage() for r in caplog.records)
    assert renderer.render("past_due", "fr", scenario("past_due--stage-1-card")).locale == "fr"
    assert list(cache.iterdir()) == []


def test_the_default_cache_is_private_and_under_xdg_cache_home(tmp_path: Path, scenario) -> None:
    """Without cache_dir, entries go to $XDG_CACHE_HOME/dunning/templates, a directory only this user may enter."""
    Renderer(TEMPLATES, LOCALES).render("past_due", "fr", scenario("past_due--stage-1-card"))
    directory = tmp_path / "cache" / "dunning" / "templates"
    assert directory.stat().st_mode & 0o777 == 0o700 and any(directory.iterdir())


CHILD = """\
import sys
from pathlib import Path
import dunning.emails.render
real = dunning.emails.render.compile_notice
def slow(env, root, notice):
    print("compiling", flush=True)
    sys.stdin.readline()  # holding the build's lock until the parent is seen waiting for it
    return real(env, root, notice)
dunning.emails.render.compile_notice = slow
dunning.emails.render.Renderer(Path(sys.argv[1]), Path(sys.argv[2]), cache_dir=Path(sys.argv[3])).compile("past_due")
"""


def _waiting_for_locks(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An event set once this process starts waiting for a build's lock that another process holds."""
    waiting, real = threading.Event(), template_cache._lock_within

    def lock_within(handle: int, seconds: float) -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting.set()
            return real(handle, seconds)
        return True

    monkeypatch.setattr(template_cache, "_lock_within", lock_within)
    return waiting


def test_a_process_waits_for_the_build_another_is_making(tmp_path: Path, compiles,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """While one process builds a notice, another asking for it waits and takes that build instead of compiling."""
    cache = tmp_path / "cache"
    argv = [sys.executable, "-c", textwrap.dedent(CHILD), str(TEMPLATES), str(LOCALES), str(cache)]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert child.stdin is not None and child.stdout is not None and child.stdout.readline() == "compiling\n"
        waiting = _waiting_for_locks(monkeypatch)
        with ThreadPoolExecutor(1) as pool:
            compiling = pool.submit(Renderer(TEMPLATES, LOCALES, cache_dir=cache).compile, "past_due")
            assert waiting.wait(timeout=60), "never waited for the child's lock"
            child.stdin.write("go\n")
            child.stdin.flush()
            compiled = compiling.result(timeout=60)
    finally:
        if child.stdin is not None:
            child.stdin.close()  # a child still waiting reads end of file and goes on
        assert child.wait(timeout=60) == 0
    assert compiles["mjml"] == [] and compiled.html.text.startswith("<!doctype html>")
