"""Compiled templates kept on disk between processes, so that a new process renders at once.

An entry sits in a slot (one per notice, or per notice and locale, of one template tree) under a
key that hashes everything it was made from: a slot holds only its latest entry, so old versions
do not pile up. Entries are written whole (a temporary file renamed into place) with a checksum,
and anything unreadable is a miss. A process compiling an entry holds the slot's lock, so that the
other processes of a run wait for its result instead of compiling the same thing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import marshal
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import CodeType

import babel
import jinja2

from dunning.emails.compiler import Compiled
from dunning.emails.compose import Source, text_digest

try:
    import fcntl
except ImportError:  # POSIX only: elsewhere, processes may compile the same entry at once
    fcntl = None  # type: ignore[assignment]

__all__ = ["default_cache_dir", "digest", "TemplateCache", "dump_build", "load_build", "dump_code", "load_code",
           "runtime_tag"]

log = logging.getLogger(__name__)

LOCK_PATIENCE_SECONDS = 5.0  # a compile takes far less: a holder still at it longer has stalled
LOCK_POLL_SECONDS = 0.01

_MAGIC = b"dunning-template-cache-1\n"
_DIGEST = 32
_BUILD_PARTS = ("html", "text", "subject", "preheader")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/dunning/templates, or ~/.cache/dunning/templates."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dunning" / "templates"


def digest(*parts: str | bytes) -> str:
    """A SHA-256 over parts (each one length-prefixed, so that no two lists of parts collide)."""
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        sha.update(len(data).to_bytes(8, "big"))
        sha.update(data)
    return sha.hexdigest()


class TemplateCache:
    """A private directory of compiled templates; see open()."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def open(cls, directory: Path) -> TemplateCache | None:
        """The cache in directory (created private), or None when it cannot be used safely."""
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            stat = directory.stat()
        except OSError as exc:
            log.warning("template cache %s unusable, compiling in every process: %s", directory, exc)
            return None
        # Entries are code this process runs: a directory others could write to is never read.
        if stat.st_mode & 0o022 or (hasattr(os, "getuid") and stat.st_uid != os.getuid()):
            log.warning("template cache %s is not private to this user: not used", directory)
            return None
        return cls(directory)

    def load(self, slot: str, key: str) -> bytes | None:
        """The slot's entry if it was stored under key and is intact, else None."""
        try:
            data = (self.directory / slot).read_bytes()
        except OSError:
            return None
        start = len(_MAGIC)
        if not data.startswith(_MAGIC) or data[start:start + _DIGEST] != bytes.fromhex(key):
            return None
        checksum, payload = data[start + _DIGEST:start + 2 * _DIGEST], data[start + 2 * _DIGEST:]
        return payload if _checksum(payload) == checksum else None

    def store(self, slot: str, key: str, payload: bytes) -> None:
        """Make payload the slot's entry under key (a failure to write only costs a later compile)."""
        data = b"".join((_MAGIC, bytes.fromhex(key), _checksum(payload), payload))
        try:
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{slot}.")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                os.replace(temporary, self.directory / slot)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:
            log.debug("template cache: cannot store %s: %s", slot, exc)

    @contextmanager
    def locked(self, slot: str) -> Iterator[None]:
        """Hold the slot's lock while compiling: other processes asking for it wait (freed if this one dies)."""
        if fcntl is None:
            yield
            return
        try:
            handle = os.open(self.directory / f"{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield
            return
        try:
            if not _lock_within(handle, LOCK_PATIENCE_SECONDS):
                # The holder may be stopped or stalled: waiting on would stall this process with it.
                log.info("template cache: %s is still being compiled by another process; compiling it here too",
                         slot)
            yield
        finally:
            os.close(handle)


def _lock_within(handle: int, seconds: float) -> bool:
    """Take the exclusive lock of an open file, waiting at most this long; whether it was taken."""
    assert fcntl is not None
    give_up = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= give_up:
                return False
            time.sleep(LOCK_POLL_SECONDS)


def dump_build(compiled: Compiled, templates_dir: Path) -> bytes | None:
    """A notice's build as an entry, or None when a file changed while it was compiled."""
    if len(compiled.digests) != len(compiled.files) or not all(compiled.digests):
        return None
    parts = {part: [getattr(compiled, part).text, getattr(compiled, part).lines] for part in _BUILD_PARTS}
    try:   # relative: another process may name the same directory another way
        files = [[path.relative_to(templates_dir).as_posix(), sha]
                 for path, sha in zip(compiled.files, compiled.digests, strict=True)]
    except ValueError:
        return None
    return json.dumps({"notice": compiled.notice, "files": files, "parts": parts}).encode("utf-8")


def load_build(payload: bytes | None, notice: str, templates_dir: Path) -> Compiled | None:
    """The build an entry holds, if every file it was made from still has the text it had."""
    if payload is None:
        return None
    try:
        data = json.loads(payload)
        files = [(templates_dir / path, sha) for path, sha in data["files"]]
        if data["notice"] != notice or not all(_unchanged(path, sha) for path, sha in files):
            return None
        parts = {part: Source(text, tuple(tuple(line) for line in lines))
                 for part, (text, lines) in data["parts"].items()}
        return Compiled(notice, **parts, files=tuple(p for p, _ in files), digests=tuple(d for _, d in files))
    except (ValueError, KeyError, TypeError):
        return None


def _unchanged(path: Path, sha: str) -> bool:
    try:
        return text_digest(path.read_text(encoding="utf-8")) == sha
    except (OSError, ValueError):
        return False


def dump_code(codes: Sequence[CodeType]) -> bytes:
    """Compiled template code as an entry."""
    return marshal.dumps(tuple(codes))


def load_code(payload: bytes | None, count: int) -> list[CodeType] | None:
    """The `count` code objects an entry holds, or None."""
    if payload is None:
        return None
    try:
        codes = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(codes, tuple) or len(codes) != count or not all(isinstance(c, CodeType) for c in codes):
        return None
    return list(codes)


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST).digest()


# The modules whose code shapes what a compiled template contains.
_COMPILED_BY = ("dunning.emails.compose", "dunning.emails.compiler", "dunning.emails.folding",
                "dunning.emails.jinja_env", "dunning.emails.render", "dunning.emails.template_cache",
                "dunning.i18n.catalogs", "dunning.i18n.formats")


@functools.cache
def runtime_tag() -> str:
    """What compiled code depends on besides its inputs: Python, the libraries and this package's compiler."""
    parts: list[str | bytes] = [sys.version, jinja2.__version__, babel.__version__]
    for module in _COMPILED_BY:
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None
        parts.append(Path(spec.origin).read_bytes())
    # The MJML port by its files' stamp: reading its package metadata would slow every process's start.
    spec = importlib.util.find_spec("mjml")
    if spec is not None and spec.origin:
        stat = os.stat(spec.origin)
        parts.append(f"{spec.origin}:{stat.st_mtime_ns}:{stat.st_size}")
    return digest(*parts)
