"""Where bounce messages come from: a Maildir, an mbox file, or one message on standard input."""

from __future__ import annotations

import mailbox
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from dunning.errors import BounceSourceError

__all__ = ["RawMessage", "read_source", "add_to_maildir", "keep_aside", "mark_done"]


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message's bytes, and where it sits when it came from a Maildir (to move it once handled)."""

    data: bytes
    origin: str
    maildir: Path | None = None
    key: str | None = None
    unread: int | None = None  # a Maildir message larger than the limit: its size, its bytes left in its file


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def read_source(source: str, max_bytes: int | None = None) -> Iterator[RawMessage]:
    """Every message of one source: "-" is standard input (one message), a directory a Maildir, a file an mbox.
    A Maildir message longer than max_bytes is not read (its RawMessage says how long it is)."""
    if source == "-":
        yield RawMessage(sys.stdin.buffer.read(), "stdin")
        return
    path = Path(source)
    if path.is_dir():
        if not _is_maildir(path):
            raise BounceSourceError(f"{source}: a directory that is not a Maildir (no cur/, new/ and tmp/)")
        maildir = mailbox.Maildir(path, factory=None, create=False)
        seen = _seen_keys(path)
        for key in sorted(maildir.keys()):
            if key not in seen:  # a message flagged seen was handled by an earlier ingest
                yield _from_maildir(maildir, key, f"{source}/{key}", path, max_bytes)
    elif path.is_file():
        with path.open("rb") as first:
            if not first.read(5) == b"From ":
                raise BounceSourceError(f"{source}: not an mbox file (it does not start with a \"From \" line)")
        mbox = mailbox.mbox(path, factory=None, create=False)
        for n, key in enumerate(mbox.keys()):
            yield RawMessage(mbox.get_bytes(key), f"{source}#{n + 1}")
    else:
        raise BounceSourceError(f"{source}: no such file or directory")


def _from_maildir(maildir: mailbox.Maildir, key: str, origin: str, path: Path, max_bytes: int | None) -> RawMessage:
    """One message of a Maildir, its bytes read only when they are within max_bytes."""
    if max_bytes is not None:
        with maildir.get_file(key) as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
        if size > max_bytes:
            return RawMessage(b"", origin, path, key, unread=size)
    return RawMessage(maildir.get_bytes(key), origin, path, key)


def _seen_keys(path: Path) -> set[str]:
    """Keys of the Maildir's messages flagged S (seen), read from their file names alone."""
    seen = set()
    for name in os.listdir(path / "cur"):
        key, _, info = name.partition(":")
        if info.startswith("2,") and "S" in info[2:]:
            seen.add(key)
    return seen


def add_to_maildir(data: bytes | BinaryIO, folder: Path) -> None:
    """Deliver one message (its bytes, or a file copied line by line) into a Maildir, creating it (and the
    folders above it) when missing."""
    folder.parent.mkdir(parents=True, exist_ok=True)  # a new project's var/bounces/ is not there yet
    mailbox.Maildir(folder, factory=None, create=True).add(data)


def keep_aside(message: RawMessage, folder: Path) -> None:
    """Put a message that cannot be classified into the unparsed Maildir, taking it out of its source Maildir."""
    if message.unread is not None and message.maildir is not None and message.key is not None:
        with mailbox.Maildir(message.maildir, factory=None, create=False).get_file(message.key) as file:
            add_to_maildir(cast(BinaryIO, file), folder)
    else:
        add_to_maildir(message.data, folder)
    if message.maildir is not None and message.key is not None:
        mailbox.Maildir(message.maildir, factory=None, create=False).discard(message.key)


def mark_done(message: RawMessage) -> None:
    """Flag a handled message of a Maildir as seen (moved to cur/), so the next ingest passes it by."""
    if message.maildir is None or message.key is None:
        return
    box = mailbox.Maildir(message.maildir, factory=None, create=False)
    try:
        msg = box.get_message(message.key)
    except KeyError:
        return
    msg.set_subdir("cur")
    msg.add_flag("S")
    box[message.key] = msg
