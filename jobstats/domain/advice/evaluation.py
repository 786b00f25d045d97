"""The rules in force (built-in, minus the disabled ones, plus the site's) and their evaluation over a job."""

from __future__ import annotations

import functools
import logging
import string
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings

from jobstats.domain.advice import options, outcome, script, usage
from jobstats.domain.advice.facts import FACT_NAMES, AdviceRule, Finding, JobFacts, script_lines
from jobstats.domain.advice.language import RuleError, load_rules_source

logger = logging.getLogger(__name__)

BUILTIN_RULES: tuple[AdviceRule, ...] = outcome.RULES + usage.RULES + options.RULES + script.RULES


def registry(sources: Sequence[str] = (), disabled: Iterable[str] = ()) -> list[AdviceRule]:
    """The built-in rules minus ``disabled``, then each source's rules (a site rule replaces a built-in of the same id)."""
    off = set(disabled)
    rules = {rule.id: rule for rule in BUILTIN_RULES if rule.id not in off}
    for source in sources:
        for rule in load_rules_source(source):
            rules[rule.id] = rule
    return list(rules.values())


@functools.cache
def _cached_registry(sources: tuple[str, ...], disabled: tuple[str, ...]) -> tuple[AdviceRule, ...]:
    try:
        return tuple(registry(sources, disabled))
    except RuleError:
        logger.exception("JOBSTATS_ADVICE_RULES is unusable; using the built-in rules only")
        return tuple(registry((), disabled))


def site_rules() -> tuple[AdviceRule, ...]:
    return _cached_registry(tuple(settings.JOBSTATS_ADVICE_RULES), tuple(settings.JOBSTATS_ADVICE_DISABLED))


# --- Evaluation -------------------------------------------------------------------------------
class _Values(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


class _SafeFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "?"
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


def _message(rule: AdviceRule, facts: JobFacts, line: int | None) -> str:
    values = _Values({name: getattr(facts, name) for name in FACT_NAMES})
    values["line"] = line if line is not None else "?"
    try:
        return _SafeFormatter().vformat(str(rule.message), (), values)
    except (IndexError, KeyError, ValueError, AttributeError):
        return str(rule.message)


def doc_url(anchor: str, base: str | None = None) -> str:
    base = settings.JOBSTATS_DOCS_URL if base is None else base
    if not base or not anchor:
        return ""
    return f"{base.rstrip('#')}#{anchor}" if "#" not in base else f"{base.split('#', 1)[0]}#{anchor}"


def evaluate(
    facts: JobFacts, rules: Iterable[AdviceRule] | None = None, *, docs_base: str | None = None
) -> list[Finding]:
    """The findings of every rule that applies, most severe first, then by script line."""
    findings: list[Finding] = []
    lines = list(script_lines(facts.script)) if facts.script else []
    for rule in site_rules() if rules is None else rules:
        try:
            if not rule.when(facts):
                continue
            line_number = None
            if rule.line is not None:
                for number, text in lines:
                    match = rule.line.search(text)
                    if match and (rule.line_check is None or rule.line_check(match, facts)):
                        line_number = number
                        break
                if line_number is None:
                    continue
        except Exception:  # a site rule's bug must not break the job page
            logger.exception("advice rule %s failed", rule.id)
            continue
        findings.append(
            Finding(
                rule.id,
                rule.severity,
                _message(rule, facts, line_number),
                doc_url(rule.anchor, docs_base),
                line_number,
                rule.highlights,
            )
        )
    findings.sort(key=lambda f: (-f.severity, f.line if f.line is not None else 10**9, f.rule))
    return findings
