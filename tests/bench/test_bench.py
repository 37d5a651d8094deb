"""The benchmark keeps working: its small variant runs every phase, and its fallback sink counts."""

from __future__ import annotations

import re
import smtplib
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # bench/ is run from the checkout (python -m bench), not installed

from bench.sink import postfix_tool, start_sink  # noqa: E402

PHASES = ("`dunning import`, every group due", "`dunning run`, end to end", "`dunning run` again",
          "baseline: Jinja2 + precompiled HTML", "baseline: the same, MJML compiled per message",
          "smtp-source", "`dunning import`, nothing due", "`dunning run`, nothing due")
ROW = re.compile(r"^\| (?P<phase>[^|]+) \| (?P<count>[\d,]+) \w+ \| (?P<wall>[\d.]+) \| (?P<rate>[\d,]+) \|"
                 r".*\| (?P<each>[^|]*) \|$", re.M)
SINK_CHECK = re.compile(r"^- ok: `dunning run`, end to end \((\d) of 2\): sink received ([\d,]+), "
                        r"run reported ([\d,]+) sent$", re.M)
REPEATED = ("`dunning run`, end to end", "baseline: Jinja2 + precompiled HTML", "smtp-source")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_small_benchmark_measures_every_phase_and_the_sink_gets_every_notice(tmp_path: Path) -> None:
    """`python -m bench --small --repeat 2` exits 0, lists every phase with a non-zero count, shows both runs
    of the repeated phases, and the sink got exactly what each `dunning run` sent."""
    out = tmp_path / "latest.md"
    done = subprocess.run([sys.executable, "-m", "bench", "--small", "--repeat", "2", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    table = out.read_text(encoding="utf-8")
    rows = {m["phase"]: m for m in ROW.finditer(table)}
    expected = PHASES if postfix_tool("smtp-source") else tuple(p for p in PHASES if p != "smtp-source")
    for phase in expected:
        row = next((r for name, r in rows.items() if name.startswith(phase)), None)
        assert row is not None, f"no row for {phase!r} in:\n{table}"
        assert _number(row["count"]) > 0 and float(row["wall"]) > 0, row.group(0)
    run_row = next(r for name, r in rows.items() if name.startswith("`dunning run`, end to end"))
    runs = SINK_CHECK.findall(table)
    assert [number for number, _, _ in runs] == ["1", "2"], table
    for _, received, sent in runs:
        assert _number(received) == _number(sent) == _number(run_row["count"]) > 0
    for name, row in rows.items():
        each = [_number(rate) for rate in row["each"].split(" · ") if rate.strip()]
        if name.startswith(tuple(p for p in REPEATED if p in expected)):
            assert len(each) == 2 and min(each) <= _number(row["rate"]) <= max(each), row.group(0)
        else:
            assert each == [], row.group(0)
    if "smtp-source" in expected:   # as many connections as every delivery process of `dunning run` opens
        workers = tomllib.loads((REPO / "settings.toml").read_text(encoding="utf-8"))["delivery"]["workers"]
        assert f"| smtp-source ({4 * workers} connections," in table
        assert f"Connections: {4 * workers} for `dunning run` (4 in each of its {workers} delivery processes)" in table
    assert "FAILED" not in table


def test_fallback_sink_counts_every_message_it_accepts(tmp_path: Path) -> None:
    """The asyncio sink in bench/ takes messages over one connection, dot-stuffed lines included, counting each once."""
    with start_sink(tmp_path, prefer="python") as sink:
        assert sink.kind.startswith("bench.sink_server")
        with smtplib.SMTP(sink.host, sink.port) as smtp:
            for body in ("Subject: one\r\n\r\nhello\r\n", "Subject: two\r\n\r\n.\r\n..\r\nend.\r\n",
                         "Subject: three\r\n\r\n" + "x" * 200_000 + "\r\n"):
                smtp.sendmail("billing@example.com", ["a@customer.example", "b@customer.example"], body)
            smtp.rset()
            smtp.noop()
        assert sink.count() == 3
