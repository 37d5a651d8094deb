"""A short part's text (the subject) remembered by the values it reads, for the next email that reads the same.

A notice's subject reads a stage or two, the same for most of a run's emails: it is rendered once per set of
values instead of once per email. A part is remembered only when what it reads is known from its tree (no
include, import or extends; no filter that draws at random) and, for each email, only when every value it
reads is a plain value (None, a bool, an int, a str, a date) compared with its type: a list, a mapping or a
value a template could read differently (a datetime in another zone, a Decimal's trailing zeros) is rendered
as usual. A failure is never remembered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from jinja2 import nodes

from dunning.emails.jinja_env import CONTEXT_READS, EmailEnvironment

__all__ = ["Memo", "read_names"]

_PLAIN = frozenset({type(None), bool, int, str, date})
_UNKNOWN_READS = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
_UNREPEATABLE = frozenset({"random"})   # filters whose result differs from one call to the next
_LIMIT = 256   # texts kept per part: a part reading a value of every account stops being remembered


def read_names(env: EmailEnvironment, tree: nodes.Template) -> tuple[str, ...] | None:
    """The names a folded template reads from its variables (and those its filters read from the context),
    or None when they cannot be told from the tree."""
    if any(True for _ in tree.find_all(_UNKNOWN_READS)):
        return None
    filters = {node.name for node in tree.find_all(nodes.Filter)}
    if filters & _UNREPEATABLE:
        return None
    # every name it loads: a superset of those it reads from its variables (one it sets makes no key: the key
    # then misses it, and the part is rendered every time)
    names = {node.name for node in tree.find_all(nodes.Name) if node.ctx == "load"}
    for name in filters:
        names.update(CONTEXT_READS.get(name, ()))
    return tuple(sorted(names))


class Memo:
    """The texts one part rendered, keyed by the plain values of the names it reads."""

    __slots__ = ("names", "texts")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.texts: dict[tuple[Any, ...], str] = {}

    def text(self, variables: Mapping[str, Any], render: Callable[[], str]) -> str:
        """The text remembered for these variables' values, else render() (remembered when they are plain)."""
        key = self.key(variables)
        if key is None:
            return render()
        found = self.texts.get(key)
        if found is None:
            found = render()
            if len(self.texts) < _LIMIT:
                self.texts[key] = found
        return found

    def key(self, variables: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The values this part reads, with their types; None when one is not a plain value (or missing)."""
        values = tuple([variables.get(name, _MISSING) for name in self.names])
        kinds = tuple([type(value) for value in values])
        if not _PLAIN.issuperset(kinds):
            return None
        return values + kinds


_MISSING = object()
