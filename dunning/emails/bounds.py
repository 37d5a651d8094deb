"""The sizes a template's operations may reach: `*`, `**`, `+`, `%`, `~` and the filters that pad, repeat or
join text are refused (ValueTooLarge) before they build a value past the bound, not after.

The bound is the most characters a part of an email may have (delivery.max_message_bytes): a longer value
could not be written anyway. Integers are held to the digits Python writes as text
(sys.int_info.default_max_str_digits): a larger power or product could not be written either, and computing
it takes one call the render's deadline cannot interrupt.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, ItemsView, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import filters, pass_environment, pass_eval_context, runtime
from jinja2.environment import Environment
from jinja2.exceptions import TemplateRuntimeError
from jinja2.nodes import EvalContext

__all__ = ["DEFAULT_BOUND", "TEXT_METHODS", "ValueTooLarge", "Bounds", "text_size"]

DEFAULT_BOUND = 10 * 1024 * 1024   # delivery.max_message_bytes's default, for a renderer given no limit
_INT_BITS = sys.int_info.default_max_str_digits * 10 // 3 + 1
_SEQUENCES = (str, list, tuple)
# the str methods whose result can be much longer than the text and their arguments
TEXT_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "join", "replace", "format",
                          "format_map"})
_FIELD_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")   # "{0:>20}" → ">20"
_NESTED_FIELD = re.compile(r"\{[^{}]*?:[^{}]*\{")    # "{:>{width}}": a width given as an argument
# a %-conversion's width and precision: "%-*.3f" → ("*", "3")
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


class ValueTooLarge(TemplateRuntimeError):
    """An operation of a template would build a value past the bound."""


def text_size(value: Any, limit: int) -> int:
    """About how many characters str(value) has: exact for text; a list is counted until it passes limit."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        value = value.items()
    if not isinstance(value, (list, tuple, set, frozenset, ItemsView)):
        return 1   # a number (held to _INT_BITS), a date, a boolean: short
    size = 2
    for item in value:
        size += text_size(item, limit - size) + 2
        if size > limit:
            break
    return size


@dataclass(frozen=True, slots=True)
class Bounds:
    """The most characters a value a template builds may have; checks operations before they run."""

    limit: int = DEFAULT_BOUND

    def refuse(self, what: str, size: int) -> None:
        """Raise ValueTooLarge when size passes the limit."""
        if size > self.limit:
            raise ValueTooLarge(f"{what} would make a value of more than {self.limit} characters "
                                "(delivery.max_message_bytes)")

    def binop(self, operator: str, left: Any, right: Any) -> None:
        """Refuse `left operator right` when its result would pass the limit (or Python's digits, for ints)."""
        if type(left) is int and type(right) is int:
            bits = _int_bits(operator, left, right)
            if bits > _INT_BITS:
                raise ValueTooLarge(f"`{operator}` would make an integer of more than "
                                    f"{sys.int_info.default_max_str_digits} digits (more than Python writes)")
        elif operator == "*":
            count, sequence = (right, left) if isinstance(right, int) else (left, right)
            if isinstance(count, int) and isinstance(sequence, _SEQUENCES) and sequence and count > 1:
                self.refuse("`*`", text_size(sequence, self.limit) * count)
        elif operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            self.refuse("`+`", text_size(left, self.limit) + text_size(right, self.limit))
        elif operator == "%" and isinstance(left, str):
            self.refuse("`%`", format_size(left, right, self.limit))

    def joins(self) -> dict[str, Callable[[Iterable[Any]], str]]:
        """str_join and markup_join (what `~` calls in compiled templates), refusing a result past the limit."""

        def bounded(join: Callable[[Iterable[Any]], str]) -> Callable[[Iterable[Any]], str]:
            def concat(seq: Iterable[Any]) -> str:
                seq = list(seq)
                self.refuse("`~`", sum([text_size(value, self.limit) for value in seq]))
                return join(seq)

            return concat

        return {"str_join": bounded(runtime.str_join), "markup_join": bounded(runtime.markup_join)}

    def filters(self) -> dict[str, Callable[..., Any]]:
        """center, indent, wordwrap, format, join and replace, refusing a result past the limit."""
        refuse, limit = self.refuse, self.limit

        def center(value: str, width: int = 80) -> str:
            refuse("center", max(width, 0))
            return filters.do_center(value, width)

        def indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
            text = str(s)
            pad = width if isinstance(width, int) else text_size(width, limit)
            refuse("indent", len(text) + pad * (text.count("\n") + 1))
            return filters.do_indent(s, width, first, blank)

        @pass_environment
        def wordwrap(environment: Environment, s: str, width: int = 79, break_long_words: bool = True,
                     wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:
            refuse("wordwrap", len(s) * (1 + len(wrapstring or environment.newline_sequence)))
            return filters.do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)

        def format(value: str, *args: Any, **kwargs: Any) -> str:
            refuse("format", format_size(value, kwargs or args, limit))
            return filters.do_format(value, *args, **kwargs)

        @pass_eval_context
        def join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "",
                 attribute: str | int | None = None) -> str:
            items = list(value)
            refuse("join", text_size(items, limit) + len(d) * len(items))
            return filters.sync_do_join(eval_ctx, items, d, attribute)

        @pass_eval_context
        def replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
            refuse("replace", _replaced_size(str(s), str(old), str(new), -1 if count is None else count))
            return filters.do_replace(eval_ctx, s, old, new, count)

        return {"center": center, "indent": indent, "wordwrap": wordwrap, "format": format, "join": join,
                "replace": replace}

    def method(self, text: str, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        """text's method name (one of TEXT_METHODS, as the sandbox gives it), refusing a result past the limit."""

        def bounded(*args: Any, **kwargs: Any) -> Any:
            if name == "join":
                args = (list(args[0]), *args[1:])
            self.refuse(f"str.{name}", _method_size(text, name, args, kwargs, self.limit))
            return method(*args, **kwargs)

        return bounded


def _method_size(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> int:
    """About how many characters text.name(*args, **kwargs) has, for the str methods in TEXT_METHODS."""
    values = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill"):
        return max([len(text), *[v for v in values[:1] if type(v) is int]])
    if name == "expandtabs":
        return len(text) + text.count("\t") * max([8, *[v for v in values[:1] if type(v) is int]])
    if name == "join":
        return text_size(values[0], limit) + len(text) * len(values[0])
    if name == "replace":
        return _replaced_size(text, *(*values, -1)[:3])
    size = len(text) + text_size(values, limit)   # format, format_map: widths as %-conversions have them
    for spec in _FIELD_SPEC.findall(text):
        size += sum([int(number) for number in re.findall(r"\d+", spec)])
    if _NESTED_FIELD.search(text):
        size += sum([abs(v) for v in values if type(v) is int])
    return size


def _replaced_size(text: str, old: str, new: str, count: int) -> int:
    """How many characters text.replace(old, new, count) has."""
    found = text.count(old) if count < 0 else min(count, text.count(old))
    return len(text) + found * (len(new) - len(old))


def _int_bits(operator: str, left: int, right: int) -> int:
    """At least how many bits `left operator right` has: 0 where it cannot grow past its operands."""
    if operator == "**":
        return (abs(left).bit_length() - 1) * right if right > 0 else 0
    if operator == "*":
        return left.bit_length() + right.bit_length() - 1
    return 0


def format_size(text: str, values: Any, limit: int) -> int:
    """About how many characters `text % values` has: its text, widths, precisions and the values' own text."""
    args = values if isinstance(values, tuple) else (values,)
    size = len(text) + sum([text_size(value, limit) for value in args])
    for match in _CONVERSION.finditer(text):
        size += sum([int(number) for number in match.groups() if number and number != "*"])
    if "*" in text:
        size += sum([abs(value) for value in args if type(value) is int])
    return size
