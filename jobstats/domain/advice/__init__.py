"""Advice on a job: declarative rules over its facts (submit line, script, metrics, outcome).

Each rule is a small entry: an id, a severity, a message, a documentation anchor and a
condition over :class:`JobFacts` (a Python callable, or the JSON condition language below),
optionally a pattern matched against the lines of the job script (the finding then names the
line). Sites add rules with JOBSTATS_ADVICE_RULES (a dotted module exposing ``RULES``, or a
JSON file) and switch built-in ones off with JOBSTATS_ADVICE_DISABLED.

JSON rule files are a list of objects::

    [{"id": "site-scratch", "severity": "info", "anchor": "scratch",
      "message": "This job ran {elapsed_hours:.1f} hours from /home; /scratch is faster.",
      "when": {"all": [{"fact": "work_dir", "op": "startswith", "value": "/home/"},
                       {"fact": "elapsed_hours", "op": ">", "value": 1}]},
      "line": "optional regular expression over script lines",
      "highlights": ["cpu"]}]

Operators: ``< <= > >= == != in not_in contains startswith matches set unset``; ``all``,
``any`` and ``not`` combine conditions. Messages may use ``{fact}`` and ``{fact:.1f}``
placeholders of JobFacts fields, and ``{line}`` (the script line number).

The package: ``facts`` (JobFacts, AdviceRule, Finding), the built-in rules by what they look at
(``outcome``, ``usage``, ``options``, ``script``), ``language`` (site rules: JSON conditions, rule
modules) and ``evaluation`` (the rules in force, and their evaluation). Site rule modules import
``AdviceRule`` and ``Severity`` from this package, as the names below.
"""

from jobstats.domain.advice.evaluation import BUILTIN_RULES, doc_url, evaluate, registry, site_rules
from jobstats.domain.advice.facts import AdviceRule, Finding, JobFacts, Severity, modules_loaded, script_lines
from jobstats.domain.advice.language import RuleError, compile_condition, load_rules_source, rule_from_dict

__all__ = [
    "BUILTIN_RULES",
    "AdviceRule",
    "Finding",
    "JobFacts",
    "RuleError",
    "Severity",
    "compile_condition",
    "doc_url",
    "evaluate",
    "load_rules_source",
    "modules_loaded",
    "registry",
    "rule_from_dict",
    "script_lines",
    "site_rules",
]
