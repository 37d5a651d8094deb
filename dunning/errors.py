"""Every exception the project raises on purpose, and ExitCode: the one table of exit codes.

Each exception carries the context an operator needs to act, as attributes, and also subclasses the
built-in a caller would catch (ValueError for bad input, OSError for a file or a server). The exit
codes stay out of the exceptions: EXIT_CODES maps them, and `cli.main` is the only place where one
becomes an exit code (through exit_code_for).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode", "DunningError", "SettingsError", "RecordError", "ContractViolation", "TemplateError",
           "ScenarioError", "MessageError", "DeliveryError", "LinkError", "ReconcileError", "OutputError",
           "DatabaseUnavailable", "DatabaseNotCreated", "OutputClosed", "ProjectExistsError",
           "BounceSourceError", "BounceDeferredError", "SuppressionError", "DkimError", "SourceUnavailable",
           "RecipientRefused", "StudioUnavailable", "LeaseLost", "StorageFailed", "WorkerLost", "EmailTooLarge",
           "RenderTooSlow",
           "EXIT_CODES", "exit_code_for"]


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

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class SettingsError(DunningError, ValueError):
    """A setting is missing or invalid; the message names the key's path."""


class RecordError(DunningError, ValueError):
    """One billing-state record breaks the import contract."""

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


class TemplateError(DunningError, ValueError):
    """A template or translation cannot be compiled or rendered."""

    def __init__(self, message: str, *, template: str | None = None, line: int | None = None,
                 locale: str | None = None) -> None:
        super().__init__(message, template=template, line=line, locale=locale)
        self.template, self.line, self.locale = template, line, locale


class EmailTooLarge(TemplateError):
    """A template makes an email larger than the largest one allowed (delivery.max_message_bytes)."""


class RenderTooSlow(TemplateError):
    """A template takes longer than i18n.render_seconds to render one email (a loop that does not end)."""


class ScenarioError(DunningError, ValueError):
    """A scenario file is not valid JSON or not shaped like a render context."""


class MessageError(DunningError, ValueError):
    """A notice cannot become a valid message: a bad address, or a control character in a header."""

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"{header}: {reason}", header=header, reason=reason)
        self.header, self.reason = header, reason


class DeliveryError(DunningError, ConnectionError):
    """SMTP delivery cannot proceed (server down, TLS refused, too many connection errors)."""

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(message, smtp_code=smtp_code)
        self.smtp_code = smtp_code


class LeaseLost(DunningError, TimeoutError):
    """A delivery process no longer holds the lease on emails it claimed: another may be sending them."""


class WorkerLost(DunningError, ChildProcessError):
    """A delivery process of the run ended without reporting (killed): what it held waits for its lease to run out."""


class LinkError(DunningError, ValueError):
    """A settlement-link token is expired, tampered with, or signed by an unknown key."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


class DatabaseUnavailable(DunningError, ConnectionError):
    """The database server named by database.url cannot be reached or refuses the connection."""


class StorageFailed(DunningError, OSError):
    """A file or the database cannot be read or written: the disk is full, read-only, or failing."""


class DatabaseNotCreated(DunningError, OSError):
    """The SQLite file named by database.url cannot be opened or created (a missing directory, no permission)."""


class OutputClosed(DunningError, BrokenPipeError):
    """Standard output was closed before the command finished writing (`dunning sample | head`)."""


class ReconcileError(DunningError, ValueError):
    """An email named on the command line is not one whose outcome is unknown."""


class OutputError(DunningError, OSError):
    """An output file the command was asked to write cannot be created there."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message, path=path)
        self.path = path


class ProjectExistsError(DunningError, FileExistsError):
    """`dunning init` would overwrite files of an existing project."""


class BounceSourceError(DunningError, OSError):
    """A bounce source named on the command line is missing, or neither a Maildir nor an mbox file."""


class BounceDeferredError(DunningError, OSError):
    """A bounce can be neither recorded (the database failed) nor kept aside (its folder cannot be written):
    the MTA keeps it and tries again later; in a Maildir it waits for the next ingest."""


class SuppressionError(DunningError, ValueError):
    """An address given to `dunning suppressions` is not an address, or is not suppressed."""


class DkimError(DunningError, ValueError):
    """The DKIM key cannot be read or cannot sign."""


class SourceUnavailable(DunningError, ConnectionError):
    """A billing system (Stripe) cannot be reached, or answers with a server error."""


class RecipientRefused(DunningError, ValueError):
    """The address is not one the studio may send a test to."""


class StudioUnavailable(DunningError, OSError):
    """The studio could not listen (port taken, address not on this machine)."""


EXIT_CODES: dict[type[DunningError], ExitCode] = {
    SettingsError: ExitCode.CONFIG,
    DkimError: ExitCode.CONFIG,
    RecordError: ExitCode.DATA,
    TemplateError: ExitCode.DATA,
    EmailTooLarge: ExitCode.DATA,
    RenderTooSlow: ExitCode.DATA,
    ScenarioError: ExitCode.DATA,
    MessageError: ExitCode.DATA,
    LinkError: ExitCode.DATA,
    ReconcileError: ExitCode.DATA,
    SuppressionError: ExitCode.DATA,
    RecipientRefused: ExitCode.DATA,
    BounceSourceError: ExitCode.NO_INPUT,
    DatabaseUnavailable: ExitCode.UNAVAILABLE,
    StudioUnavailable: ExitCode.UNAVAILABLE,
    DatabaseNotCreated: ExitCode.CANT_CREATE,
    OutputError: ExitCode.CANT_CREATE,
    ProjectExistsError: ExitCode.CANT_CREATE,
    OutputClosed: ExitCode.IO,
    StorageFailed: ExitCode.IO,
    DeliveryError: ExitCode.PENDING,
    LeaseLost: ExitCode.PENDING,
    WorkerLost: ExitCode.PENDING,
    BounceDeferredError: ExitCode.PENDING,
    SourceUnavailable: ExitCode.UNAVAILABLE,
}


def exit_code_for(error: DunningError) -> ExitCode:
    """The exit code of an error: its class's in EXIT_CODES, else its nearest listed base's, else FAILED."""
    for kind in type(error).__mro__:
        if issubclass(kind, DunningError) and kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return ExitCode.FAILED
