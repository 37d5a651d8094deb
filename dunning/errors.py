"""Every exception the project raises on purpose, and ExitCode: the one table of exit codes.

Each exception carries the context an operator needs to act, as attributes; `cli.main` is the only
place where one becomes an exit code.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode", "DunningError", "SettingsError", "RecordError", "ContractViolation", "TemplateError",
           "ScenarioError", "MessageError", "DeliveryError", "LinkError", "ReconcileError", "OutputError",
           "DatabaseUnavailable", "DatabaseNotCreated", "OutputClosed", "ProjectExistsError",
           "BounceSourceError", "BounceDeferredError", "SuppressionError", "DkimError", "SourceUnavailable"]


class ExitCode(IntEnum):
    """What a `dunning` command's exit status means (sysexits.h where one fits)."""

    OK = 0
    FAILED = 1          # some email failed permanently or its outcome is unknown; lint or preview found errors
    USAGE = 2           # argparse: a mistyped command line
    DATA = 65           # EX_DATAERR: a record, template, scenario, token or email id is wrong
    NO_INPUT = 66       # EX_NOINPUT: an input (a bounce Maildir or mbox) does not exist or cannot be read
    UNAVAILABLE = 69    # EX_UNAVAILABLE: a server the command needs cannot be reached
    INTERNAL = 70       # EX_SOFTWARE: a bug; the traceback is logged
    CANT_CREATE = 73    # EX_CANTCREAT: an output file or database cannot be created
    IO = 74             # EX_IOERR: reading or writing failed
    PENDING = 75        # EX_TEMPFAIL: retries wait, or delivery stopped early; a later run goes on
    CONFIG = 78         # EX_CONFIG: bad settings, or no signing key
    INTERRUPTED = 130   # Ctrl-C


class DunningError(Exception):
    """Base class: an error the CLI reports as a message and an exit code, not a traceback."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class SettingsError(DunningError):
    """A setting is missing or invalid; the message names the key's path."""

    exit_code = ExitCode.CONFIG


class RecordError(DunningError):
    """One billing-state record breaks the import contract."""

    exit_code = ExitCode.DATA

    def __init__(self, reason: str, *, line: int | None = None, account: str | None = None,
                 field: str | None = None) -> None:
        where = f"line {line}" if line is not None else "record"
        if account:
            where += f" ({account})"
        text = f"{where}: {field}: {reason}" if field else f"{where}: {reason}"
        super().__init__(text, line=line, account=account, field=field)
        self.line, self.account, self.field, self.reason = line, account, field, reason


class ContractViolation(ValueError):
    """A broken reference inside one account, carrying the field path it was found at."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class TemplateError(DunningError):
    """A template or translation cannot be compiled or rendered."""

    exit_code = ExitCode.DATA

    def __init__(self, message: str, *, template: str | None = None, line: int | None = None,
                 locale: str | None = None) -> None:
        super().__init__(message, template=template, line=line, locale=locale)
        self.template, self.line, self.locale = template, line, locale


class ScenarioError(DunningError):
    """A scenario file is not valid JSON or not shaped like a render context."""

    exit_code = ExitCode.DATA


class MessageError(DunningError):
    """A notice cannot become a valid message: a bad address, or a control character in a header."""

    exit_code = ExitCode.DATA

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"{header}: {reason}", header=header, reason=reason)
        self.header, self.reason = header, reason


class DeliveryError(DunningError):
    """SMTP delivery cannot proceed (server down, TLS refused, too many connection errors)."""

    exit_code = ExitCode.PENDING

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(message, smtp_code=smtp_code)
        self.smtp_code = smtp_code


class LinkError(DunningError):
    """A settlement-link token is expired, tampered with, or signed by an unknown key."""

    exit_code = ExitCode.DATA

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


class DatabaseUnavailable(DunningError):
    """The database server named by database.url cannot be reached or refuses the connection."""

    exit_code = ExitCode.UNAVAILABLE


class DatabaseNotCreated(DunningError):
    """The SQLite file named by database.url cannot be opened or created (a missing directory, no permission)."""

    exit_code = ExitCode.CANT_CREATE


class OutputClosed(DunningError):
    """Standard output was closed before the command finished writing (`dunning sample | head`)."""

    exit_code = ExitCode.IO


class ReconcileError(DunningError):
    """An email named on the command line is not one whose outcome is unknown."""

    exit_code = ExitCode.DATA


class OutputError(DunningError):
    """An output file the command was asked to write cannot be created there."""

    exit_code = ExitCode.CANT_CREATE

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message, path=path)
        self.path = path


class ProjectExistsError(DunningError):
    """`dunning init` would overwrite files of an existing project."""

    exit_code = ExitCode.CANT_CREATE


class BounceSourceError(DunningError):
    """A bounce source named on the command line is missing, or neither a Maildir nor an mbox file."""

    exit_code = ExitCode.NO_INPUT


class BounceDeferredError(DunningError):
    """A bounce can be neither recorded (the database failed) nor kept aside (its folder cannot be written):
    the MTA keeps it and tries again later; in a Maildir it waits for the next ingest."""

    exit_code = ExitCode.PENDING


class SuppressionError(DunningError):
    """An address given to `dunning suppressions` is not an address, or is not suppressed."""

    exit_code = ExitCode.DATA


class DkimError(DunningError):
    """The DKIM key cannot be read or cannot sign."""

    exit_code = ExitCode.CONFIG


class SourceUnavailable(DunningError):
    """A billing system (Stripe) cannot be reached, or answers with a server error."""

    exit_code = ExitCode.UNAVAILABLE
