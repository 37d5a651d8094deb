"""The command line: help, version, and the sample generator."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

import dunning
from dunning.billing import sample
from dunning.billing.contract import Account
from dunning.cli import build_parser, command_modules, command_name, main
from dunning.errors import ExitCode


def test_version_and_help_list_every_command():
    """`dunning --version` prints the version; `--help` lists the subcommands with their help."""
    done = subprocess.run([sys.executable, "-m", "dunning", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"dunning {dunning.__version__}"
    done = subprocess.run([sys.executable, "-m", "dunning", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("import", "sample"):
        assert command in done.stdout


def test_each_command_module_is_named_after_its_command():
    """The rule that finds a command's module without importing the others holds for every command."""
    modules = command_modules()
    assert len(modules) >= 10
    for module in modules:
        assert command_name(module.__name__.rpartition(".")[2]) == module.NAME
        assert [m.__name__ for m in command_modules(module.NAME)] == [module.__name__]


def test_a_command_loads_only_its_own_module():
    """`dunning --settings FILE run --help` imports the run command, not the other commands' modules."""
    script = ("import sys\nfrom dunning.cli import main\n"
              "try:\n    main(['--settings', 'run.toml', '-v', 'run', '--help'])\nexcept SystemExit as exit:\n"
              "    print(exit.code)\n"
              "print(' '.join(sorted(m for m in sys.modules if m.startswith('dunning.commands.'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    *_, code, loaded = done.stdout.strip().splitlines()
    assert code == "0" and "--as-of" in done.stdout
    assert {name for name in loaded.split() if not name.rpartition(".")[2].startswith("_")} == {"dunning.commands.run"}


def test_unknown_command_is_a_usage_error():
    """An unknown subcommand exits 2 with argparse's usage message."""
    done = subprocess.run([sys.executable, "-m", "dunning", "frobnicate"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice" in done.stderr and "capture-server" in done.stderr


def test_sample_accounts_all_satisfy_the_contract():
    """Every generated account validates against the import contract, in every mix."""
    as_of = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for mix in ("mixed", "all-due", "none-due"):
        for account in sample.generate(60, as_of, mix=mix):
            Account.model_validate(account)


def test_sample_covers_locales_currencies_and_payers():
    """The mixed sample holds several locales, currencies, card and bank-transfer payers, and cancellations."""
    as_of = datetime(2026, 11, 20, 12, tzinfo=UTC)
    accounts = list(sample.generate(200, as_of, in_window=False))
    assert len({a["locale"] for a in accounts}) >= 10
    assert {"EUR", "JPY", "SEK", "USD"} <= {i["currency"] for a in accounts for i in a["invoices"]}
    assert {"card", "invoice"} == {pm["type"] for a in accounts for pm in a["payment_methods"]}
    reasons = {s.get("cancel_reason") for a in accounts for s in a["subscriptions"]}
    assert {"non_payment", "customer_request"} <= reasons


def test_sample_in_window_keeps_local_times_inside_the_send_window():
    """By default the sample only uses time zones whose local time at as_of is inside 09:00-19:00."""
    as_of = datetime(2026, 11, 20, 2, tzinfo=UTC)
    from zoneinfo import ZoneInfo
    for account in sample.generate(50, as_of):
        assert 9 <= as_of.astimezone(ZoneInfo(account["timezone"])).hour < 19


def test_sample_command_is_deterministic(tmp_path):
    """The same seed and as_of give byte-identical files."""
    args = ["sample", "--accounts", "25", "--as-of", "2026-11-20T12:00:00Z"]
    assert main(args + ["--out", str(tmp_path / "a.jsonl")]) == 0
    assert main(args + ["--out", str(tmp_path / "b.jsonl")]) == 0
    first = (tmp_path / "a.jsonl").read_bytes()
    assert first == (tmp_path / "b.jsonl").read_bytes()
    assert len(first.splitlines()) == 25 and json.loads(first.splitlines()[0])["id"] == "acct_0000001"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and every (sub)subcommand's parser below it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_option_of_every_command_has_help_text():
    """`--help` explains every option and argument of every command and action: none is left bare."""
    bare = [f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            for parser in _parsers(build_parser()) for action in parser._actions
            if not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert bare == []


@pytest.mark.parametrize("argv, usage", [
    (["plan", "--bogus"], "usage: dunning plan "),
    (["link", "sign", "--account", "a", "--payment-method", "p", "--key", "k", "--bogus"], "usage: dunning link sign "),
    (["i18n", "stats", "--bogus"], "usage: dunning i18n stats "),
    (["run", "--as-of", "yesterday"], "usage: dunning run "),
])
def test_a_mistyped_option_shows_the_usage_of_its_subcommand(argv, usage, capsys):
    """An unknown or bad option exits 2 with the usage of the subcommand it was given to, not the top level's."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith(usage) and "COMMAND ..." not in err
