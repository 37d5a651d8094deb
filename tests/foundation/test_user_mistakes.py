"""A user's mistake ends in a message and a documented exit code (sysexits), never in a traceback and 70."""

from __future__ import annotations

import subprocess
import sys
from contextlib import nullcontext

import pytest

from dunning.cli import main

MISTAKES = {
    "PostgreSQL unreachable": (["plan"], {"DUNNING_DATABASE__URL": "postgresql+psycopg://u:secret@127.0.0.1:1/x"},
                               69, "cannot connect to postgresql+psycopg://u:***@127.0.0.1:1/x"),
    "a SQLite file that cannot be opened": (["plan"], {"DUNNING_DATABASE__URL": "sqlite:////proc/x.sqlite3"}, 73,
                                            "cannot open or create the SQLite file /proc/x.sqlite3"),
    "a SQLite file in a missing directory": (["plan"], {"DUNNING_DATABASE__URL": "sqlite:///missing/deeper/d.db"},
                                             73, "does not exist"),
    "a list setting that is not JSON": (["plan"], {"DUNNING_PAST_DUE__DAYS_AFTER_DUE": "1,7"}, 78,
                                        "written as JSON"),
    "a port out of range": (["capture-server", "--port", "99999"], {}, 2, "a port is 0 to 65535"),
    "a negative count": (["sample", "--accounts", "-5"], {}, 2, "must be 0 or more"),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_mistake_gets_a_message_and_its_exit_code(name, monkeypatch, capsys, tmp_path):
    """Each mistake exits with its documented code and says what is wrong, without a traceback or a password."""
    argv, environment, code, message = MISTAKES[name]
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) if code == 2 else nullcontext() as raised:
        assert main(argv) == code
    if code == 2:
        assert raised.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "secret" not in err
    assert not (tmp_path / "missing").exists()


def test_output_closed_early_is_an_io_error():
    """`dunning sample | head -1`: the closed pipe ends the command with exit 74 and a message, not a traceback."""
    command = [sys.executable, "-m", "dunning", "sample", "--accounts", "2000"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 74
    assert "broken pipe" in err and "Traceback" not in err
