"""`python -m bench.bounces_ingest`: bounce messages ingested per second, one process per message or a Maildir.

Makes a project with `dunning init` in a temporary folder and takes `--messages` messages of Sisimai's
labelled corpus (tests/bounces/corpus/sisimai). Then measures, each on a fresh database:

- `pipe`: one `dunning bounces ingest -` process per message, the message on standard input, as Postfix's
  `pipe` transport or an alias runs it;
- `spool`: one `dunning bounces spool MAILDIR` process per message (it reads no settings and no database),
  then one `dunning bounces ingest MAILDIR` over them all, as a timer or a path unit runs it;
- `maildir`: one `dunning bounces ingest MAILDIR` over all of them, the MTA having delivered them into the
  Maildir itself (docs/deploy.md).

Prints messages per second, wall and CPU seconds of each.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "bounces" / "corpus" / "sisimai" / "messages"


def main(argv: list[str] | None = None) -> int:
    """Measure both routes and print a line for each; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m bench.bounces_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args(argv)
    messages = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))[:args.messages]]
    dunning = str(Path(sys.executable).with_name("dunning"))
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "DUNNING_LINKS__KEYS": "bench", "DUNNING_BOUNCES__RETURN_PATH": "bounces@example.com"}
        for name in ("DUNNING_DATABASE__URL", "DUNNING_BOUNCES__UNPARSED", "DUNNING_SETTINGS"):
            env.pop(name, None)
        for route in ("pipe", "spool", "maildir"):
            project = Path(work) / route
            subprocess.run([dunning, "init", str(project)], check=True, capture_output=True, env=env)
            settings = ["--settings", str(project / "settings.toml")]
            measure = {"pipe": _pipe, "spool": _spool, "maildir": _maildir}[route]
            wall, cpu = measure(dunning, settings, messages, project, env)
            print(f"{route}: {len(messages)} messages in {wall:.2f} s wall, {cpu:.2f} s CPU: "
                  f"{len(messages) / wall:.1f} messages/s")
    return 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pipe(dunning: str, settings: list[str], messages: list[bytes], project: Path,
          env: dict[str, str]) -> tuple[float, float]:
    cpu, start = _children_cpu(), time.perf_counter()
    for data in messages:
        subprocess.run([dunning, *settings, "bounces", "ingest", "-"], input=data, check=True, capture_output=True,
                       env=env)
    return time.perf_counter() - start, _children_cpu() - cpu


def _spool(dunning: str, settings: list[str], messages: list[bytes], project: Path,
           env: dict[str, str]) -> tuple[float, float]:
    maildir = str(project / "var" / "spool")
    cpu, start = _children_cpu(), time.perf_counter()
    for data in messages:
        subprocess.run([dunning, "bounces", "spool", maildir], input=data, check=True, capture_output=True, env=env)
    subprocess.run([dunning, *settings, "bounces", "ingest", maildir], check=True, capture_output=True, env=env)
    return time.perf_counter() - start, _children_cpu() - cpu


def _maildir(dunning: str, settings: list[str], messages: list[bytes], project: Path,
             env: dict[str, str]) -> tuple[float, float]:
    box = mailbox.Maildir(project / "var" / "Maildir", create=True)
    for data in messages:
        box.add(data)
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run([dunning, *settings, "bounces", "ingest", str(project / "var" / "Maildir")], check=True,
                   capture_output=True, env=env)
    return time.perf_counter() - start, _children_cpu() - cpu


if __name__ == "__main__":
    raise SystemExit(main())
