"""Where bounce messages come from: a Maildir, an mbox file, or one message on standard input.

Every source is read in bounded memory: a message longer than the limit is never read whole, only its size
known, and its bytes are copied aside a block at a time (dunning.bounces.ingest keeps it in the unparsed
Maildir).
"""

from __future__ import annotations

import mailbox
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import BinaryIO, cast

from dunning.errors import BounceSourceError

__all__ = ["BLOCK", "RawMessage", "read_source", "read_stream", "add_to_maildir", "keep_aside", "mark_done"]

BLOCK = 1024 * 1024  # what a message past the limit is copied in, and the longest piece of a line read at once


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message's bytes, and where it sits when it came from a Maildir (to move it once handled).

    A message longer than the limit has no bytes: unread is its size (from standard input, the bytes read
    before the limit was passed) and blocks gives its bytes a block at a time, once."""

    data: bytes
    origin: str
    maildir: Path | None = None
    key: str | None = None
    unread: int | None = None
    blocks: Callable[[], Iterator[bytes]] | None = None


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def read_source(source: str, max_bytes: int | None = None) -> Iterator[RawMessage]:
    """Every message of one source: "-" is standard input (one message), a directory a Maildir, a file an mbox.
    A message longer than max_bytes is not read (its RawMessage says how long it is)."""
    if source == "-":
        yield read_stream(sys.stdin.buffer, "stdin", max_bytes)
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
        yield from _from_mbox(path, source, max_bytes)
    else:
        raise BounceSourceError(f"{source}: no such file or directory")


def read_stream(stream: BinaryIO, origin: str, max_bytes: int | None = None) -> RawMessage:
    """The one message of a stream (standard input), read no further than max_bytes and one byte."""
    if max_bytes is None:
        return RawMessage(stream.read(), origin)
    head = stream.read(max_bytes + 1)
    if len(head) <= max_bytes:
        return RawMessage(head, origin)
    rest = iter(partial(stream.read, BLOCK), b"")
    return RawMessage(b"", origin, unread=len(head), blocks=lambda: chain((head,), rest))


def _from_maildir(maildir: mailbox.Maildir, key: str, origin: str, path: Path, max_bytes: int | None) -> RawMessage:
    """One message of a Maildir, its bytes read only when they are within max_bytes."""
    if max_bytes is not None:
        with maildir.get_file(key) as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
        if size > max_bytes:
            return RawMessage(b"", origin, path, key, unread=size,
                              blocks=lambda: _blocks(cast(BinaryIO, maildir.get_file(key)), size))
    return RawMessage(maildir.get_bytes(key), origin, path, key)


def _from_mbox(path: Path, source: str, max_bytes: int | None) -> Iterator[RawMessage]:
    """Each message of an mbox file, as mailbox.mbox splits them, each read only when within max_bytes."""
    with path.open("rb") as scan, path.open("rb") as read:
        for n, (start, stop) in enumerate(_mbox_spans(scan)):
            origin, size = f"{source}#{n + 1}", stop - start
            if max_bytes is not None and size > max_bytes:
                yield RawMessage(b"", origin, unread=size, blocks=partial(_span_blocks, path, start, size))
                continue
            read.seek(start)
            yield RawMessage(read.read(size), origin)


def _mbox_spans(file: BinaryIO) -> Iterator[tuple[int, int]]:
    """(start, stop) of each message's bytes after its "From " line, the blank line before the next one left
    out; lines are read a block at a time, so a line of any length is never held whole."""
    start: int | None = None
    position, line_start, blank, from_line = 0, True, False, False
    while piece := file.readline(BLOCK):
        was_start, line_start = line_start, piece.endswith(b"\n")
        if was_start and piece.startswith(b"From "):
            if start is not None:
                yield start, position - 1 if blank else position
            start, from_line = None, True
        position += len(piece)
        if from_line and line_start:
            start, from_line = position, False
        blank = was_start and piece == b"\n"
    if start is not None or from_line:  # the last message; or a last "From " line with no end, and no bytes
        yield (position if start is None else start), position - 1 if blank else position


def _span_blocks(path: Path, start: int, size: int) -> Iterator[bytes]:
    file = path.open("rb")
    file.seek(start)
    return _blocks(file, size)


def _blocks(file: BinaryIO, size: int) -> Iterator[bytes]:
    """size bytes of a file from where it stands, a block at a time; the file closed after."""
    with file:
        while size > 0 and (block := file.read(min(BLOCK, size))):
            size -= len(block)
            yield block


def _seen_keys(path: Path) -> set[str]:
    """Keys of the Maildir's messages flagged S (seen), read from their file names alone."""
    seen = set()
    for name in os.listdir(path / "cur"):
        key, _, info = name.partition(":")
        if info.startswith("2,") and "S" in info[2:]:
            seen.add(key)
    return seen


def add_to_maildir(data: bytes | Iterable[bytes], folder: Path) -> None:
    """Deliver one message (its bytes, or its blocks in order) into a Maildir, creating it (and the folders
    above it) when missing: written into tmp/, then moved into new/ whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)  # a new project's var/bounces/ is not there yet
    mailbox.Maildir(folder, factory=None, create=True)
    name = f"{int(time.time())}.M{uuid.uuid4().hex}P{os.getpid()}.dunning"
    tmp = folder / "tmp" / name
    try:
        with tmp.open("xb") as file:
            for block in (data,) if isinstance(data, bytes) else data:
                file.write(block)
            file.flush()
            os.fsync(file.fileno())
        tmp.rename(folder / "new" / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def keep_aside(message: RawMessage, folder: Path) -> None:
    """Put a message that cannot be classified into the unparsed Maildir, taking it out of its source Maildir."""
    add_to_maildir(message.blocks() if message.blocks is not None else message.data, folder)
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
