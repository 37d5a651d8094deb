"""What a locale's environment works out once, when it compiles a template, instead of for every email.

Constant gettext calls become their translation (a `{% trans %}` with named values becomes its text and
the values, each escaped as it is written), locale constants their value, a loop that writes constant
text a literal number of times that text, and outputs next to each other one output, so that the
template writes its constant text as one string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from babel.support import NullTranslations
from jinja2 import Environment, nodes
from jinja2.visitor import NodeTransformer

__all__ = ["PLURAL_FILTER", "Fold", "placeholders"]

_N = TypeVar("_N", bound=nodes.Node)
PLURAL_FILTER = "_ngettext"   # what a folded {% trans count=… %} calls
_FOLDED_TEXT = 4096   # the longest text a loop of constant text is folded into


class Fold(NodeTransformer):
    """Replaces constant gettext calls with their translation and locale constants with their value."""

    def __init__(self, env: Environment, translations: NullTranslations, constants: Mapping[str, str]) -> None:
        self.env, self.translations, self.constants = env, translations, constants
        self.stored: set[str] = set()
        # folded call → the pieces a {{ }} may write in turn (the node is kept so that its id stays its own)
        self.pieces: dict[int, tuple[nodes.Node | None, list[nodes.Expr]]] = {}

    def visit_Template(self, node: nodes.Template) -> nodes.Node:
        self.stored = {n.name for n in node.find_all(nodes.Name) if n.ctx != "load"}
        tree = self.generic_visit(node)
        _join_outputs(tree)
        return tree

    def visit_Name(self, node: nodes.Name) -> nodes.Node:
        if node.ctx == "load" and node.name in self.constants and node.name not in self.stored:
            return self._new(nodes.Const(self.constants[node.name]), node)
        return node

    def visit_Output(self, output: nodes.Output) -> nodes.Node:
        node = self.generic_visit(output)
        assert isinstance(node, nodes.Output)
        children: list[nodes.Expr] = []
        for child in node.nodes:
            folded, pieces = self.pieces.get(id(child), (None, []))
            children += pieces if folded is child else [child]
        node.nodes = children
        return node

    def visit_For(self, loop: nodes.For) -> nodes.Node:
        """`{% for pad in range(40) %}text{% endfor %}`: the text written 40 times once, when compiled."""
        node = self.generic_visit(loop)
        assert isinstance(node, nodes.For)
        count = _constant_range(node.iter, self.stored)
        if count is None or node.else_ or node.test is not None or node.recursive:
            return node
        texts = [child for output in node.body if isinstance(output, nodes.Output) for child in output.nodes]
        if any(not isinstance(output, nodes.Output) for output in node.body) or any(
                not isinstance(text, nodes.TemplateData) for text in texts):
            return node
        data = "".join(text.data for text in texts if isinstance(text, nodes.TemplateData))
        if len(data) * count > _FOLDED_TEXT:   # a large text stays a loop, bounded as it renders
            return node
        data *= count
        return self._new(nodes.Output([self._new(nodes.TemplateData(data), node)]), node)

    def visit_Call(self, call: nodes.Call) -> nodes.Node:
        node = self.generic_visit(call)
        assert isinstance(node, nodes.Call)
        callee = node.node
        if not isinstance(callee, nodes.Name) or callee.name in self.stored or node.dyn_args or node.dyn_kwargs:
            return node
        constant = [isinstance(a, nodes.Const) for a in node.args]
        if callee.name == "ngettext" and constant[:2] == [True, True] and len(constant) == 3:
            # the form depends on the count, known per email: a filter call, without the sandbox's call checks
            return self._new(nodes.Filter(node.args[2], PLURAL_FILTER, node.args[:2], node.kwargs, None, None), node)
        if not all(constant):
            return node
        translations, args = self.translations, [a.value for a in node.args if isinstance(a, nodes.Const)]
        variables = {k.key: k.value for k in node.kwargs}
        if callee.name in ("gettext", "_") and len(args) == 1:
            text = translations.gettext(args[0])
        elif callee.name == "pgettext" and len(args) == 2:
            text = str(translations.pgettext(*args))
            variables.setdefault("context", nodes.Const(args[0]))
        else:
            return node
        folded = self._new(nodes.Mod(nodes.MarkSafeIfAutoescape(nodes.Const(text)),
                                     nodes.Dict([nodes.Pair(nodes.Const(k), v) for k, v in variables.items()])),
                           node)
        pieces = _pieces(text, variables)
        if pieces is not None:
            self.pieces[id(folded)] = (folded, [self._new(p, node) if isinstance(p, nodes.TemplateData) else p
                                                for p in pieces])
        return folded

    def _new(self, new: _N, old: nodes.Node) -> _N:
        new.set_lineno(old.lineno)
        new.set_environment(self.env)
        return new


def _constant_range(node: nodes.Node, stored: set[str]) -> int | None:
    """n for `range(n)` with n a small literal (and range not a name the template assigns), else None."""
    if (not isinstance(node, nodes.Call) or not isinstance(node.node, nodes.Name) or node.node.name != "range"
            or "range" in stored or len(node.args) != 1 or node.kwargs or node.dyn_args or node.dyn_kwargs):
        return None
    (count,) = node.args
    if not isinstance(count, nodes.Const) or type(count.value) is not int or not 0 <= count.value <= 1000:
        return None
    return count.value


def _join_outputs(node: nodes.Node) -> None:
    """Outputs next to each other (a folded translation between text) made one, so their texts are one string."""
    for field in node.fields:
        value = getattr(node, field, None)
        if isinstance(value, list) and any(isinstance(item, nodes.Output) for item in value):
            joined: list[Any] = []
            for item in value:
                if isinstance(item, nodes.Output) and joined and isinstance(joined[-1], nodes.Output):
                    joined[-1].nodes = joined[-1].nodes + item.nodes
                else:
                    joined.append(item)
            setattr(node, field, joined)
    for child in node.iter_child_nodes():
        _join_outputs(child)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def placeholders(text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """`Hello %(name)s, 100%%` → (("Hello ", ", 100%"), ("name",)): the texts before, between and after the
    named values, and their names; None unless the text holds plain %(name)s only (and %%)."""
    if "%" in _PLACEHOLDER.sub("", text):
        return None
    texts, names, current, position = [], [], "", 0
    for match in _PLACEHOLDER.finditer(text):
        current += text[position:match.start()]
        name = match.group(1)
        if name is None:
            current += "%"
        else:
            texts.append(current)
            names.append(name)
            current = ""
        position = match.end()
    texts.append(current + text[position:])
    return tuple(texts), tuple(names)


def _pieces(text: str, variables: dict[str, nodes.Expr]) -> list[nodes.Expr] | None:
    """`Hello %(name)s,` → [text "Hello ", the name's value, text ","]; None unless plain %(name)s only.

    The text is the translator's, trusted as newstyle gettext trusts it; each value is written on
    its own, so it is escaped in HTML as `Markup(text) % values` would escape it.
    """
    split = placeholders(text)
    if split is None or any(name not in variables for name in split[1]):
        return None
    texts, names = split
    pieces: list[nodes.Expr] = [nodes.TemplateData(texts[0])]
    for name, after in zip(names, texts[1:], strict=True):
        pieces += [variables[name], nodes.TemplateData(after)]
    return [p for p in pieces if not (isinstance(p, nodes.TemplateData) and not p.data)]
