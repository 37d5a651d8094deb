"""The sizes a template's operations may reach: `*`, `**`, `+`, `%`, `~`, the filters that pad, repeat, join,
sum or fill, and writing a list are refused (ValueTooLarge) before they build a value past the bound, not after.

A list may hold the same list many times (`{% set a = [a, a] %}` doubles it without copying anything): its text
is sized by walking it with each shared part counted once, before anything writes it.

The bound is the most characters a part of an email may have (delivery.max_message_bytes): a longer value
could not be written anyway. Integers are held to the digits Python writes as text
(sys.int_info.default_max_str_digits): a larger power or product could not be written either, and computing
it takes one call the render's deadline cannot interrupt.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Collection, ItemsView, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import filters, pass_environment, pass_eval_context, runtime, utils
from jinja2.environment import Environment
from jinja2.exceptions import TemplateRuntimeError
from jinja2.nodes import EvalContext
from jinja2.utils import Namespace
from markupsafe import Markup, escape, soft_str

__all__ = ["DEFAULT_BOUND", "TEXT_METHODS", "ValueTooLarge", "Bounds", "text_size"]

DEFAULT_BOUND = 10 * 1024 * 1024   # delivery.max_message_bytes's default, for a renderer given no limit
_INT_BITS = sys.int_info.default_max_str_digits * 10 // 3 + 1
_SEQUENCES = (str, list, tuple)
_CONTAINERS = (list, tuple, set, frozenset, Mapping, ItemsView)
# what a template can write whose text holds other values' text (a dict's items and values views included)
_WRITTEN_CONTAINERS = frozenset({list, tuple, set, frozenset, dict, type({}.items()), type({}.values())})
# a namespace's text is its attributes' (a list among them too): an email has no use for it
_NAMESPACE_WRITTEN = "a namespace written as text: write one of its attributes"
_LIPSUM_WORD = 13   # characters a word of lipsum's text and the space after it take at most
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
    return _size(value, limit, {})


def _size(value: Any, limit: int, known: dict[int, int]) -> int:
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, _CONTAINERS):
        return 1   # a number (held to _INT_BITS), a date, a boolean: short
    if id(value) in known:   # the same list again: its text again, without walking it again
        return known[id(value)]
    size = 2
    for item in (value.items() if isinstance(value, Mapping) else value):
        size += _size(item, limit - size, known) + 2
        if size > limit:
            break
    known[id(value)] = size
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

    def writers(self, escape: Callable[[Any], str], special: Callable[[str], object]
                ) -> dict[str, Callable[[Any], str]]:
        """escape (the environment's, given) and str, as compiled templates call them to write a value,
        refusing a list whose text would pass the limit. special: what tells a str that escape would change."""
        refuse, limit = self.refuse, self.limit

        def sized(kind: type, value: Any) -> None:
            if kind in _WRITTEN_CONTAINERS:
                refuse("writing a list", text_size(value, limit))
            elif kind is Namespace:
                raise ValueTooLarge(_NAMESPACE_WRITTEN)

        # (typing.cast is a call: written as annotated assignments instead, free at run time)
        def write_html(value: Any) -> str:
            kind = type(value)
            if kind is str:   # most values: written as they are, without a call to escape
                text: str = value
                return escape(text) if special(text) else text
            if kind is not Markup:
                sized(kind, value)
            return escape(value)

        def write_text(value: Any) -> str:
            kind = type(value)
            if kind is str:
                text: str = value
                return text
            sized(kind, value)
            return str(value)

        return {"escape": write_html, "str": write_text}

    def lipsum(self) -> Callable[..., str]:
        """The lipsum global, refusing more text than the limit."""

        def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
            self.refuse("lipsum", n * max * _LIPSUM_WORD)
            return utils.generate_lorem_ipsum(n, html, min, max)

        return lipsum

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
                "replace": replace, **self._container_filters()}

    def _container_filters(self) -> dict[str, Callable[..., Any]]:
        """The filters that write a list as text, or build a list larger than their input."""
        refuse, limit = self.refuse, self.limit

        def writing(name: str, write: Callable[..., Any]) -> Callable[..., Any]:
            def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
                refuse(name, text_size(value, limit))
                return write(value, *args, **kwargs)

            return bounded

        @pass_environment
        def sum(environment: Environment, iterable: Iterable[Any], attribute: str | int | None = None,
                start: Any = 0) -> Any:
            items = list(iterable)
            if not isinstance(start, (int, float)):   # a sum of lists or text: as long as their parts together
                refuse("sum", text_size(start, limit) + text_size(items, limit))
            return filters.sync_do_sum(environment, items, attribute, start)

        def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
            if fill_with is not None:
                refuse("batch", linecount * (text_size(fill_with, limit) + 2))
            return filters.do_batch(value, linecount, fill_with)

        def slice(value: Collection[Any], slices: int, fill_with: Any = None) -> Any:
            refuse("slice", slices * 4)
            return filters.sync_do_slice(value, slices, fill_with)

        @pass_eval_context
        def tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Markup:
            refuse("tojson", text_size(value, limit))
            return filters.do_tojson(eval_ctx, value, indent)

        def list_filter(value: Iterable[Any]) -> list[Any]:
            if isinstance(value, str):   # a list of its characters: five of its own for each ("'x', ")
                refuse("list", len(value) * 5)
            return filters.sync_do_list(value)

        return {"string": writing("string", soft_str), "e": writing("escape", escape),
                "escape": writing("escape", escape), "forceescape": writing("forceescape", filters.do_forceescape),
                "pprint": writing("pprint", filters.do_pprint), "tojson": tojson,
                "sum": sum, "batch": batch, "slice": slice, "list": list_filter}

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
