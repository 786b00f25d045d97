"""Constant runs of template nodes rendered once per language, not on every request.

A page's template is mostly constant for a given language: its static links, its translated
labels, the URLs of named views without arguments. Django renders each of those nodes again on
every request (a translation lookup, a reverse(), a static() each: 10-30 µs), and a page such as
the user's jobs page has about a hundred of them. ``Loader`` (the cached loader, configured in
settings.TEMPLATES) folds, once per loaded template, every run of two or more consecutive nodes
that are provably constant into one ``FoldedNode``, which renders the run's nodes the first time
and then answers the same text for the same language, script prefix, URL conf, current app and
autoescaping. Only nodes of the types below, with literal arguments and no ``as`` variable, are
constant (``constant()``); a variable, a filter, a tag with a side effect on the context or of
another type ends a run. A changed setting (tests' override_settings) empties every fold.
"""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.template import Context, Template
from django.template.base import FilterExpression, Node, NodeList, TextNode, TokenType, Variable
from django.template.defaulttags import CommentNode, IfNode, LoadNode, URLNode
from django.template.loaders import cached
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.templatetags.static import StaticNode
from django.urls import get_script_prefix, get_urlconf
from django.utils import translation
from django.utils.safestring import SafeString

_generation = 0  # bumped by setting_changed: every fold renders again


def _literal(expression: FilterExpression | None) -> bool:
    """``expression`` is a literal ("text", 'text', _("text"), 3) without filters."""
    if expression is None:
        return True
    return not expression.filters and (not isinstance(expression.var, Variable) or expression.var.lookups is None)


def constant(node: Node) -> bool:
    """``node`` renders the same text for the same language, URL conf and script prefix, and sets nothing."""
    if isinstance(node, (TextNode, CommentNode, LoadNode)):
        return True
    if isinstance(node, TranslateNode):
        return node.asvar is None and _literal(node.filter_expression) and _literal(node.message_context)
    if isinstance(node, BlockTranslateNode):
        return (
            node.asvar is None
            and not node.extra_context
            and node.countervar is None
            and _literal(node.message_context)
            and all(token.token_type == TokenType.TEXT for token in node.singular)
        )
    if isinstance(node, URLNode):
        return (
            node.asvar is None
            and _literal(node.view_name)
            and all(_literal(arg) for arg in node.args)
            and all(_literal(arg) for arg in node.kwargs.values())
        )
    if isinstance(node, StaticNode):
        return node.varname is None and _literal(node.path)
    return False


class FoldedNode(Node):
    """A run of constant nodes, rendered once per language, prefix, URL conf, app and escaping."""

    child_nodelists = ()  # nothing to find inside (ExtendsNode looks for BlockNodes on every render): constant nodes only

    def __init__(self, nodes: list[Node]) -> None:
        self.nodelist = NodeList(nodes)
        self.token = nodes[0].token  # for debug pages: the run's first line
        self.origin = nodes[0].origin
        self.rendered: dict[tuple[Any, ...], SafeString] = {}
        self.generation = _generation

    def render(self, context: Context) -> SafeString:
        if self.generation != _generation:
            self.rendered.clear()
            self.generation = _generation
        request = getattr(context, "request", None)
        current_app = getattr(request, "current_app", None) or getattr(
            getattr(request, "resolver_match", None), "namespace", None
        )  # what URLNode passes to reverse()
        key = (translation.get_language(), get_script_prefix(), get_urlconf(), current_app, context.autoescape)
        found = self.rendered.get(key)
        if found is None:
            found = self.rendered[key] = self.nodelist.render(context)
        return found


def fold(nodelist: NodeList) -> None:
    """Replace each run of 2 or more constant nodes of ``nodelist`` (and of its nodes' lists) by a FoldedNode."""
    for node in nodelist:
        if isinstance(node, FoldedNode):
            continue
        children: list[object]
        if isinstance(node, IfNode):  # its `nodelist` is a new list of every branch's nodes
            children = [child for _condition, child in node.conditions_nodelists]
        else:
            children = [getattr(node, attr, None) for attr in node.child_nodelists]
        for child in children:
            if isinstance(child, NodeList):
                fold(child)
    folded: list[Node] = []
    run: list[Node] = []
    for node in [*nodelist, None]:
        if node is not None and constant(node):
            run.append(node)
            continue
        if len(run) > 1 and not all(isinstance(item, TextNode) for item in run):
            folded.append(FoldedNode(run))
        else:
            folded.extend(run)
        run = []
        if node is not None:
            folded.append(node)
    nodelist[:] = folded
    nodelist.contains_nontext = any(not isinstance(node, TextNode) for node in folded)


class Loader(cached.Loader):
    """Django's cached loader, folding each template's constant runs once when it is loaded."""

    def get_template(self, template_name: str, skip: list[Any] | None = None) -> Template:
        key = self.cache_key(template_name, skip)
        known = key in self.get_template_cache
        template = super().get_template(template_name, skip)
        if not known:
            fold(template.nodelist)
        return template


def _settings_changed(**_kwargs: Any) -> None:
    global _generation
    _generation += 1


setting_changed.connect(_settings_changed, dispatch_uid="userportal-template-folding")
