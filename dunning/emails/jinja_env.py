"""The sandboxed Jinja environment of one locale, and the filters templates may use.

HTML templates (`*.mjml`) are autoescaped; text templates (`*.txt`), the subject and the
preheader are plain text. Each locale gets its own environment: its catalog and formats, and
its constant strings translated once, when a template is compiled (`{{ _("Invoice") }}` and a
`{% trans %}` without plural become text; their named values are still filled and escaped per
email). The locale constants (lang, dir, start, end, locale) are folded the same way (dunning.emails.folding).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from types import CodeType
from typing import Any

from babel.support import NullTranslations
from jinja2 import StrictUndefined, Template, nodes, pass_context, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from dunning.emails.bounds import TEXT_METHODS, Bounds
from dunning.emails.folding import PLURAL_FILTER, Fold, placeholders
from dunning.i18n.formats import DateFormat, Formats

__all__ = ["RenderTimeout", "RENDER_DEADLINE", "GETTEXT_NAMES", "PLURAL_FILTER", "CARD_BRANDS", "autoescape",
           "EmailEnvironment", "email_filters", "escape_output", "card_brand", "unit_words"]

_HTML_SPECIAL = re.compile("[&<>'\"]")   # what markupsafe.escape replaces
# Markup(text) for a str the filters built: Markup's own constructor asks each text for __html__ first
_html: Callable[[str], Markup] = partial(str.__new__, Markup)
_FORMS_KEPT = 1024   # plural forms remembered per locale: a count's form is looked up once
GETTEXT_NAMES = ("gettext", "ngettext", "pgettext", "npgettext")
CARD_BRANDS = {
    "amex": "American Express", "american_express": "American Express", "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club", "discover": "Discover", "jcb": "JCB", "mastercard": "Mastercard",
    "unionpay": "UnionPay", "visa": "Visa",
}


def autoescape(name: str | None) -> bool:
    """Escape HTML in the email's HTML template only (not in text, subject or preheader)."""
    return name is not None and name.endswith(".mjml")


class RenderTimeout(Exception):
    """A render ran past its deadline (RENDER_DEADLINE)."""


# The moment, on the monotonic clock, by which the render under way must end: checked at every call a template
# makes, so that nested loops (each inner loop calls range) stop as well as loops that write.
RENDER_DEADLINE: ContextVar[float] = ContextVar("RENDER_DEADLINE", default=float("inf"))


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with `obj.name` on a dict read in the template's own code: the first case of
    EmailEnvironment.getattr, without a call per attribute; anything else still goes through getattr."""

    _depth = 0   # the nesting of the attribute being written: each level holds its object in a name of its own

    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        """`(o["name"] if type(o := obj) is dict and "name" in o else environment.getattr(o, "name"))`."""
        if self.environment.is_async:
            return super().visit_Getattr(node, frame)
        held, attribute = f"t_item_{self._depth}", repr(node.attr)
        self._depth += 1
        self.write(f"({held}[{attribute}] if type({held} := ")
        self.visit(node.node, frame)
        self.write(f") is dict and {attribute} in {held} else environment.getattr({held}, {attribute}))")
        self._depth -= 1
        return None


class EmailEnvironment(ImmutableSandboxedEnvironment):
    """Sandboxed, autoescaped HTML, StrictUndefined, trimmed newstyle gettext, email filters, bounded values."""

    code_generator_class = _CodeGenerator

    # the operators that can build a value much larger than their operands (see bounds)
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, translations: NullTranslations | None = None, formats: Formats | None = None,
                 constants: Mapping[str, str] | None = None, bounds: Bounds | None = None) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                         lstrip_blocks=True, auto_reload=False)
        self.policies["ext.i18n.trimmed"] = True
        self.translations = translations
        self.constants = dict(constants or {})
        if translations is None:   # composing and checking only: rendering needs a catalog
            self.install_null_translations(newstyle=True)  # type: ignore[attr-defined]  # from jinja2.ext.i18n
            for name in GETTEXT_NAMES:
                self.globals.pop(name, None)
        else:
            self.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
            self.filters[PLURAL_FILTER] = _plural_filter(translations, formats)
        self.bounds = bounds or Bounds()
        self.filters.update(self.bounds.filters(), unit_words=unit_words)
        self.globals.update(self.constants, lipsum=self.bounds.lipsum())
        if formats is not None:
            self.filters.update(email_filters(formats, rtl=self.constants.get("dir") == "rtl"))

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`invoice.due_date` on a dict reads its item first (fast, and never a dict method)."""
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        if isinstance(obj, str) and attribute in TEXT_METHODS:
            return self.bounds.method(obj, attribute, super().getattr(obj, attribute))
        return super().getattr(obj, attribute)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Every call a template makes, once the render's deadline is checked."""
        if time.monotonic() > RENDER_DEADLINE.get():
            raise RenderTimeout
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`*`, `**`, `+` and `%`, once the deadline is checked and the result's size is known to be bounded."""
        if time.monotonic() > RENDER_DEADLINE.get():
            raise RenderTimeout
        self.bounds.binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def template(self, code: CodeType) -> Template:
        """The template of compiled code, as from_code makes it, with outputs escaped into plain text."""
        namespace: dict[str, Any] = {"environment": self, "__file__": code.co_filename}
        exec(code, namespace)
        # Outputs call escape (HTML) and str (text): a list's text is sized before it is made, since
        # str() of a list that holds one list many times can grow without bound inside one call.
        namespace.update(self.bounds.writers(escape_output, _HTML_SPECIAL.search))
        namespace.update(self.bounds.joins())   # `~`, which the sandbox does not intercept
        # A plain dict, not the ChainMap of make_globals: a locale's environment never changes its
        # globals (a new catalog makes a new environment).
        return self.template_class.from_module_dict(self, namespace, dict(self.globals))

    def adopt(self, tree: nodes.Template) -> nodes.Template:
        """A copy of a tree another EmailEnvironment parsed, as if this one had (parsing is the same in all)."""
        return copy.deepcopy(tree, {id(tree.environment): self})

    def compile(self, source: Any, name: str | None = None, filename: str | None = None,
                raw: bool = False, defer_init: bool = False) -> Any:
        """Compile with this locale's constant strings and constants folded in."""
        if self.translations is not None:
            tree = self.parse(source, name, filename) if isinstance(source, str) else source
            source = Fold(self, self.translations, self.constants).visit(tree)
        return super().compile(source, name, filename, raw, defer_init)  # type: ignore[call-overload]


def _plural_filter(translations: NullTranslations, formats: Formats | None = None) -> Callable[..., str]:
    digits = formats.number if formats is not None and formats.digits else None
    # (singular, plural, count) → the form's text, and its texts around named values (placeholders)
    forms: dict[tuple[str, str, int], tuple[str, tuple[tuple[str, ...], tuple[str, ...]] | None]] = {}

    @pass_eval_context
    def plural(eval_ctx: EvalContext, num: int, singular: str, plural: str, **variables: Any) -> str:
        """newstyle ngettext: the form for num, %-formatted with the values (escaped in HTML)."""
        variables.setdefault("num", num)
        key = (singular, plural, num)
        found = forms.get(key) if type(num) is int else None
        if found is None:
            text = translations.ngettext(singular, plural, num)
            found = (text, placeholders(text))
            if type(num) is int:
                if len(forms) >= _FORMS_KEPT:
                    forms.clear()
                forms[key] = found
        text, split = found
        if digits is not None:   # counts in the locale's own digits
            variables = {k: digits(v) if type(v) is int else v for k, v in variables.items()}
        if split is None:
            return (Markup(text) if eval_ctx.autoescape else text) % variables
        # What `%` writes, without a helper object per value: each value escaped as Markup's `%` escapes it.
        write = escape_output if eval_ctx.autoescape else str
        texts, names = split
        pieces = [texts[0]]
        for name, after in zip(names, texts[1:], strict=True):
            pieces += (write(variables[name]), after)
        return _html("".join(pieces)) if eval_ctx.autoescape else "".join(pieces)

    return plural


def email_filters(formats: Formats, *, rtl: bool = False) -> dict[str, Callable[..., Any]]:
    """The filters of one locale: money, date, datetime, amounts, names, bidi, ltr, link, number, card_brand.

    In a right-to-left language, amounts, ids, addresses and URLs are isolated as left-to-right
    units, and dates and names as units of their own direction (`<span dir>` in HTML, Unicode
    isolates in plain text), so that "JP¥ 1,500" never shows as "¥JP 1,500" inside Arabic.
    """
    ltr_unit = _isolator("ltr") if rtl else _as_is
    own_unit = _isolator("auto") if rtl else _as_is

    @pass_context
    def money(context: Context, amount: Decimal | int | str, currency: str) -> str:
        """`{{ invoice.outstanding|money(invoice.currency) }}` → `1 234,50 €` in fr, `€1,234.50` in en."""
        return ltr_unit(context, formats.money(amount, currency))

    @pass_context
    def date_filter(context: Context, value: date | datetime, format: str = "long") -> str:
        """`{{ invoice.due_date|date }}` → `1er novembre 2026`; `|date("medium")` → `1 nov. 2026`."""
        if type(value) is date:   # most dates: no timezone to look up
            return own_unit(context, formats.date(value, None, format))
        return own_unit(context, formats.date(value, context["timezone"], format))

    @pass_context
    def datetime_filter(context: Context, value: datetime, format: DateFormat = "long") -> str:
        """`{{ failure.next_retry_at|datetime }}` → date and time in the account's timezone."""
        return own_unit(context, formats.datetime(value, context["timezone"], format))

    @pass_context
    def amounts(context: Context, balance: Iterable[Mapping[str, Any]]) -> str:
        """`{{ balance|amounts }}` → `1 234,50 € et 12 000 JPY`: every currency of the balance."""
        if not rtl:
            return formats.list([formats.money(item["amount"], item["currency"]) for item in balance])
        items = [ltr_unit(context, formats.money(item["amount"], item["currency"])) for item in balance]
        if not context.eval_ctx.autoescape:
            return formats.list(items)
        return _html(formats.list([str(item) for item in items]))

    @pass_context
    def names(context: Context, items: Iterable[Mapping[str, Any] | str]) -> str:
        """`{{ subscriptions|names }}` → `Pro, Team et Storage`, each name isolated for right-to-left text."""
        texts = [item if isinstance(item, str) else item["name"] for item in items]
        if not context.eval_ctx.autoescape:
            return formats.list([_TEXT_ISOLATES["auto"].format(t) for t in texts] if rtl else texts)
        return _html(formats.list([_isolated(text) for text in texts]))

    @pass_context
    def bidi(context: Context, value: str) -> str:
        """`{{ account.name|bidi }}`: keeps a name of either direction from reordering the sentence."""
        if context.eval_ctx.autoescape:
            return _isolated(value)
        return _TEXT_ISOLATES["auto"].format(value) if rtl else value

    @pass_context
    def ltr(context: Context, value: str) -> str:
        """`{{ invoice.id|ltr }}`: an id or postal address kept left-to-right inside right-to-left text."""
        return ltr_unit(context, value)

    @pass_context
    def link(context: Context, value: str) -> str:
        """`{{ support_url|link }}`: a URL or email address; isolated in HTML, as it is in the text part.

        Mail clients find links in plain text only between spaces: an isolate touching a URL hides it.
        """
        return ltr_unit(context, value) if context.eval_ctx.autoescape else value

    return {"money": money, "date": date_filter, "datetime": datetime_filter, "amounts": amounts,
            "names": names, "bidi": bidi, "ltr": ltr, "link": link, "number": formats.number,
            "card_brand": card_brand}


_TEXT_ISOLATES = {"ltr": "\u2066{}\u2069", "auto": "\u2068{}\u2069"}   # LRI … PDI, FSI … PDI


def _as_is(context: Context, value: str) -> str:
    return value


def _isolator(direction: str) -> Callable[[Context, str], str]:
    """A writer of `value` as one unit of the given direction: `<span dir>` in HTML, isolates in text."""
    text_form, html_form = _TEXT_ISOLATES[direction], f'<span dir="{direction}">{{}}</span>'

    def isolate(context: Context, value: str) -> str:
        if context.eval_ctx.autoescape:
            return _html(html_form.format(escape_output(value)))
        return text_form.format(value)

    return isolate


@pass_eval_context
def unit_words(eval_ctx: EvalContext, value: str) -> str:
    """`{{ invoice.subscription_name|unit_words }}`: in HTML each word a `<span class="unit">`, so that a
    narrow column wraps between words, never inside one; the text part gets the words as they are."""
    if not eval_ctx.autoescape:
        return value
    kept = type(value) is str and len(value) <= _UNIT_TEXT
    found = _UNITS.get(value) if kept else None
    if found is None:
        found = _html(" ".join([f'<span class="unit">{escape_output(word)}</span>' for word in value.split()]))
        if kept:
            if len(_UNITS) >= _UNITS_KEPT:
                _UNITS.clear()
            _UNITS[value] = found
    return found


_UNITS: dict[str, Markup] = {}   # a plan's name in spans, made once: the same few names fill every email
_UNITS_KEPT, _UNIT_TEXT = 1024, 200   # at most so many names of at most so many characters
def escape_output(value: Any) -> str:
    """markupsafe.escape(value): what autoescaped output writes (a Markup comes back as it is)."""
    if type(value) is Markup:   # a filter's HTML, written as it is (escape() would copy it into a new Markup)
        return value
    if type(value) is str and _HTML_SPECIAL.search(value) is None:   # most values: nothing to escape, no Markup
        return value
    return escape(value)


def _isolated(text: str) -> Markup:
    return _html(f'<span dir="auto">{escape_output(text)}</span>')


def card_brand(brand: str | None) -> str:
    """`visa` → `Visa`, `amex` → `American Express`; an unknown brand is shown as given."""
    if not brand:
        return ""
    return CARD_BRANDS.get(brand.lower(), brand)
