"""Site rules: the JSON condition language, and rules read from a JSON file or a Python module."""

from __future__ import annotations

import importlib
import json
import re
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jobstats.domain.advice.facts import FACT_NAMES, AdviceRule, Condition, JobFacts, Severity, always


class RuleError(ValueError):
    """A site rule that cannot be used (reported by `manage.py check`)."""


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a is not None and a < b,
    "<=": lambda a, b: a is not None and a <= b,
    ">": lambda a, b: a is not None and a > b,
    ">=": lambda a, b: a is not None and a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "contains": lambda a, b: a is not None and b in a,
    "startswith": lambda a, b: isinstance(a, str) and a.startswith(b),
    "set": lambda a, b: a not in (None, "", 0, (), frozenset()),
    "unset": lambda a, b: a in (None, "", 0, (), frozenset()),
}


def compile_condition(spec: Any, where: str) -> Condition:
    """A JSON condition to a predicate over JobFacts (validated here, so it never raises later)."""
    if not isinstance(spec, Mapping):
        raise RuleError(f"{where}: a condition is an object, got {spec!r}.")
    if "all" in spec or "any" in spec:
        key = "all" if "all" in spec else "any"
        items = spec[key]
        if not isinstance(items, list) or not items:
            raise RuleError(f"{where}: {key!r} needs a non-empty list of conditions.")
        parts = [compile_condition(item, where) for item in items]
        if key == "all":
            return lambda facts: all(part(facts) for part in parts)
        return lambda facts: any(part(facts) for part in parts)
    if "not" in spec:
        inner = compile_condition(spec["not"], where)
        return lambda facts: not inner(facts)
    fact, op, value = spec.get("fact"), spec.get("op"), spec.get("value")
    if fact not in FACT_NAMES:
        raise RuleError(f"{where}: unknown fact {fact!r}; known: {', '.join(sorted(FACT_NAMES))}.")
    if op == "matches":
        try:
            pattern = re.compile(str(value))
        except re.error as exc:
            raise RuleError(f"{where}: bad regular expression {value!r}: {exc}") from exc
        return lambda facts: bool(pattern.search(str(getattr(facts, fact) or "")))
    if op not in _OPERATORS:
        raise RuleError(f"{where}: unknown operator {op!r}; known: {', '.join(sorted([*_OPERATORS, 'matches']))}.")
    compared: Any = value
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise RuleError(f"{where}: {op!r} needs a list value.")
        compared = frozenset(value)
    check = _OPERATORS[op]

    def condition(facts: JobFacts) -> bool:
        try:
            return bool(check(getattr(facts, fact), compared))
        except TypeError:
            return False  # comparing a number with a string: not a match, never a 500

    return condition


def _check_message(message: str, where: str) -> None:
    for _text, name, _spec, _conversion in string.Formatter().parse(message):
        if name is not None and name != "line" and name not in FACT_NAMES:
            raise RuleError(f"{where}: the message names an unknown fact {{{name}}}.")


def rule_from_dict(data: Any, where: str) -> AdviceRule:
    if not isinstance(data, Mapping):
        raise RuleError(f"{where}: each rule is an object.")
    unknown = set(data) - {"id", "severity", "message", "anchor", "when", "line", "highlights"}
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}.")
    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", rule_id):
        raise RuleError(f"{where}: 'id' must be a short lower-case name, got {rule_id!r}.")
    where = f"{where} rule {rule_id!r}"
    try:
        severity = Severity[str(data.get("severity", "")).upper()]
    except KeyError:
        raise RuleError(f"{where}: 'severity' must be info, warning or critical.") from None
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        raise RuleError(f"{where}: 'message' is required.")
    _check_message(message, where)
    line = None
    if data.get("line"):
        try:
            line = re.compile(str(data["line"]))
        except re.error as exc:
            raise RuleError(f"{where}: bad 'line' expression: {exc}") from exc
    return AdviceRule(
        rule_id,
        severity,
        message,
        str(data.get("anchor", "")),
        compile_condition(data["when"], where) if "when" in data else always,
        line,
        None,
        tuple(str(h) for h in data.get("highlights", ())),
    )


def load_rules_source(source: str) -> list[AdviceRule]:
    """Rules from a JSON file (a path ending in .json) or a dotted module exposing ``RULES``."""
    if source.endswith(".json"):
        try:
            data = json.loads(Path(source).read_text())
        except (OSError, ValueError) as exc:
            raise RuleError(f"{source}: {exc}") from exc
        if not isinstance(data, list):
            raise RuleError(f"{source}: expected a list of rules.")
        return [rule_from_dict(item, source) for item in data]
    try:
        module = importlib.import_module(source)
    except ImportError as exc:
        raise RuleError(f"{source}: {exc}") from exc
    rules = getattr(module, "RULES", None)
    if not isinstance(rules, list | tuple):
        raise RuleError(f"{source}: the module has no RULES list.")
    loaded = []
    for item in rules:
        if isinstance(item, AdviceRule):
            loaded.append(item)
        else:
            loaded.append(rule_from_dict(item, source))
    return loaded
