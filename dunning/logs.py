"""Log lines on stderr: text for people (the default), or one JSON object per line for log shippers.

A log line names records by their ids (email, account, notice), never by a customer's name or
address; as a second line of defence, anything shaped like an email address is masked in JSON lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

__all__ = ["LOG_FORMATS", "LogFormat", "JsonFormatter", "configure", "mask_addresses", "note"]

LOG_FORMATS = ("text", "json")
LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"

# Context a log call may pass with `extra=`: ids and counts, copied into the JSON object as they are.
FIELDS = ("command", "event", "count", "total", "email_id", "account", "notice", "worker", "exit_code", "status",
          "code", "reply", "recipient", "line", "field", "reason", "wait_seconds", "outage_seconds")
ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")


def mask_addresses(text: str) -> str:
    """text with every email address replaced by <address>."""
    return ADDRESS.sub("<address>", text)


def _masked(value: object) -> object:
    """A field's value, with any address in a text masked."""
    return mask_addresses(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the ids the call passed."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_addresses(record.getMessage()),
        }
        entry.update((name, _masked(getattr(record, name))) for name in FIELDS if hasattr(record, name))
        if record.exc_info:
            entry["exception"] = mask_addresses(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(log_format: LogFormat, *, verbose: bool) -> None:
    """Send log records to stderr in the chosen format (once per process, as logging.basicConfig does)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def note(text: str, *, logger: str = "dunning", level: int = logging.WARNING, **fields: object) -> None:
    """A line for people on stderr; one JSON log event with the same text (and the ids given) when the logs
    are JSON, so that nothing else reaches a log shipper's stream."""
    if any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers):
        logging.getLogger(logger).log(level, "%s", text, extra=fields)
    else:
        print(text, file=sys.stderr)
