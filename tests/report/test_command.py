"""`dunning report`'s command line: an empty store, bad dates, an output that cannot be written."""

from __future__ import annotations

import json

import pytest

from dunning.cli import main


def test_an_empty_store_gives_zeros_and_nulls(sqlite_url, monkeypatch, capsys):
    """With nothing sent, every count is 0, nothing is recovered and the median is null."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    assert main(["report"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"] == {"sent": 0, "clicked": 0, "settled": 0, "recovered": {},
                                 "median_days_to_settle": None}
    assert [report[key] for key in ("by_notice", "by_locale", "by_segment", "by_week")] == [[], [], [], []]


@pytest.mark.parametrize(("args", "says"), [
    (["--from", "2026-13-01"], "not a date (YYYY-MM-DD)"),
    (["--from", "2026-11-30", "--to", "2026-11-01"], "--from must not be after --to")])
def test_a_bad_period_is_a_usage_error(args, says, capsys):
    """A date that is not one, or a period that ends before it starts, exits 2 naming the option."""
    with pytest.raises(SystemExit) as exited:
        main(["report", *args])
    assert exited.value.code == 2 and says in capsys.readouterr().err


def test_an_unwritable_output_exits_73(sqlite_url, monkeypatch, tmp_path, capsys):
    """--out in a folder that does not exist: exit 73 (cannot create), naming the file."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    out = tmp_path / "missing" / "report.html"
    assert main(["report", "--format", "html", "--out", str(out)]) == 73
    assert f"cannot write the report to {out}" in capsys.readouterr().err
