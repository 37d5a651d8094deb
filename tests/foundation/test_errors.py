"""The exceptions: each is also the built-in a caller would catch, and one table gives their exit codes."""

from __future__ import annotations

import inspect

import pytest

from dunning import errors
from dunning.errors import (
    EXIT_CODES,
    DeliveryError,
    DunningError,
    ExitCode,
    MessageError,
    OutputError,
    ProjectExistsError,
    RecordError,
    SettingsError,
    exit_code_for,
)

DUNNING_ERRORS = [kind for _, kind in inspect.getmembers(errors, inspect.isclass)
                  if issubclass(kind, DunningError) and kind is not DunningError]


@pytest.mark.parametrize("kind", DUNNING_ERRORS, ids=lambda kind: kind.__name__)
def test_every_error_has_an_exit_code_and_a_built_in_base(kind):
    """Each exception of errors.py is listed in EXIT_CODES and also subclasses ValueError or OSError."""
    assert kind in EXIT_CODES
    assert issubclass(kind, ValueError | OSError)
    assert "exit_code" not in vars(kind)


def test_errors_are_caught_as_the_built_in_they_match():
    """Bad input is a ValueError, a file or a server that fails is an OSError, as a library user expects."""
    with pytest.raises(ValueError, match="To: no recipient"):
        raise MessageError("To", "no recipient")
    with pytest.raises(ValueError, match="line 3: email: not an address"):
        raise RecordError("not an address", line=3, field="email")
    with pytest.raises(ConnectionError, match="server down") as caught:
        raise DeliveryError("server down", smtp_code=421)
    assert caught.value.smtp_code == 421
    with pytest.raises(FileExistsError):
        raise ProjectExistsError("settings.toml exists")
    with pytest.raises(OSError):
        raise OutputError("cannot write", path="/x")


def test_a_subclass_not_in_the_table_gets_its_nearest_base_code():
    """An error class defined elsewhere takes the exit code of the nearest class EXIT_CODES lists."""
    class LocalSettingsError(SettingsError):
        pass

    assert exit_code_for(LocalSettingsError("x")) == ExitCode.CONFIG
    assert exit_code_for(DunningError("x")) == ExitCode.FAILED

