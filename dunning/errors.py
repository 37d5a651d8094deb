"""The project's exceptions; each carries the context an operator needs to act."""

from __future__ import annotations


class DunningError(Exception):
    """Base class: an error the CLI reports as a message and an exit code, not a traceback."""

    exit_code = 1

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class SettingsError(DunningError):
    """A setting is missing or invalid; the message names the key's path."""

    exit_code = 78  # EX_CONFIG


class RecordError(DunningError):
    """One billing-state record breaks the import contract."""

    exit_code = 65  # EX_DATAERR

    def __init__(self, reason: str, *, line: int | None = None, account: str | None = None,
                 field: str | None = None) -> None:
        where = f"line {line}" if line is not None else "record"
        if account:
            where += f" ({account})"
        text = f"{where}: {field}: {reason}" if field else f"{where}: {reason}"
        super().__init__(text, line=line, account=account, field=field)
        self.line, self.account, self.field, self.reason = line, account, field, reason


class TemplateError(DunningError):
    """A template or translation cannot be compiled or rendered."""

    exit_code = 65

    def __init__(self, message: str, *, template: str | None = None, line: int | None = None,
                 locale: str | None = None) -> None:
        super().__init__(message, template=template, line=line, locale=locale)
        self.template, self.line, self.locale = template, line, locale


class DeliveryError(DunningError):
    """SMTP delivery cannot proceed (server down, TLS refused, too many connection errors)."""

    exit_code = 75  # EX_TEMPFAIL

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(message, smtp_code=smtp_code)
        self.smtp_code = smtp_code


class LinkError(DunningError):
    """A settlement-link token is expired, tampered with, or signed by an unknown key."""

    exit_code = 65

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason
