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
"""

from __future__ import annotations

import enum
import functools
import importlib
import json
import logging
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return {1: "info", 2: "warning", 3: "critical"}[self.value]


@dataclass(frozen=True)
class JobFacts:
    """Everything a rule may look at. None means "not known" (no metrics, no script...)."""

    state: str = ""
    exit_code: int = 0
    exit_signal: int = 0
    started: bool = False
    running: bool = False
    cores: int = 0
    nodes: int = 0
    gpus: int = 0
    gpu_type: str = ""
    memory_mb: int = 0
    timelimit_minutes: int = 0  # 0: unlimited or unknown
    elapsed_seconds: float = 0.0
    elapsed_hours: float = 0.0
    partition: str = ""
    account: str = ""
    qos: str = ""
    work_dir: str = ""
    job_name: str = ""
    is_array: bool = False
    # submit line and #SBATCH directives
    has_submit_line: bool = False
    options: frozenset[str] = frozenset()
    exclusive: bool = False
    excluded_nodes: str = ""
    requested_nodelist: str = ""
    licenses: str = ""
    reservation: str = ""
    switches: str = ""
    requeue: bool = False
    no_requeue: bool = False
    dependencies: tuple[int, ...] = ()
    singleton: bool = False
    dependents: tuple[int, ...] = ()
    # the job script
    has_script: bool = False
    script: str = ""
    modules: frozenset[str] = frozenset()
    # metrics (Prometheus, else accounting)
    usage_source: str = ""
    cores_used: float | None = None
    cpu_efficiency: float | None = None
    mem_max_mb: float | None = None
    mem_efficiency: float | None = None
    gpu_util: float | None = None
    gpus_seen: int | None = None
    threads_running: float | None = None
    # infrastructure
    node_events: int = 0


FACT_NAMES = frozenset(f.name for f in fields(JobFacts))


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    doc_url: str = ""
    line: int | None = None
    highlights: tuple[str, ...] = ()


Condition = Callable[[JobFacts], bool]
LineCheck = Callable[[re.Match[str], JobFacts], bool]


def _always(facts: JobFacts) -> bool:
    return True


@dataclass(frozen=True)
class AdviceRule:
    id: str
    severity: Severity
    message: str | Promise
    anchor: str = ""
    when: Condition = _always
    line: re.Pattern[str] | None = None
    line_check: LineCheck | None = None
    highlights: tuple[str, ...] = field(default=())


# --- Script helpers ---------------------------------------------------------------------------
_MODULE_LOAD = re.compile(r"^\s*(?:module\s+(?:--?\S+\s+)*(?:load|add)|ml)\s+(.*)$")


def modules_loaded(script: str) -> frozenset[str]:
    """Module names a script loads (``module load``, ``module --force load``, ``ml``), versions dropped."""
    names: set[str] = set()
    for raw in script.splitlines():
        match = _MODULE_LOAD.match(raw.split("#", 1)[0])
        if not match:
            continue
        for token in match.group(1).split():
            if token.startswith("-") or token in ("load", "add"):
                continue
            names.add(token.split("/", 1)[0].lower())
    return frozenset(names)


def script_lines(script: str) -> Iterable[tuple[int, str]]:
    """(line number, text) of the commands in a script: comments and #SBATCH lines skipped."""
    for number, raw in enumerate(script.splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        yield number, text


# --- Built-in rules (domain 7.4, TT's analyze_job and job view, with its bugs fixed) ----------
_LAUNCHER = r"(?:srun|mpirun|mpiexec)"
_GMX = r"(?:gmx|gmx_mpi|gmx_d|gmx_d_mpi)\s+mdrun|mdrun_mpi(?:_d)?"


def _nt_mismatch(match: re.Match[str], facts: JobFacts) -> bool:
    return int(match.group(1)) != facts.cores


BUILTIN_RULES: tuple[AdviceRule, ...] = (
    # outcome
    AdviceRule(
        "oom",
        Severity.CRITICAL,
        _("The job ran out of memory and was killed. Ask for more memory (--mem or --mem-per-cpu) than its peak."),
        "out-of-memory",
        lambda f: f.state == "OUT_OF_MEMORY",
        highlights=("mem",),
    ),
    AdviceRule(
        "timeout",
        Severity.WARNING,
        _("The job reached its time limit and was stopped before it finished. Ask for more time or save checkpoints."),
        "time-limit",
        lambda f: f.state == "TIMEOUT",
    ),
    AdviceRule(
        "node-failure",
        Severity.CRITICAL,
        _(
            "A node of the job failed. This is probably not your fault; resubmit the job, and tell us if it happens again."
        ),
        "node-failure",
        lambda f: f.state == "NODE_FAIL",
    ),
    AdviceRule(
        "node-events",
        Severity.INFO,
        _(
            "{node_events} node event(s) (down or drained nodes) happened around the time of this job; see the list below."
        ),
        "node-failure",
        lambda f: f.node_events > 0 and f.state != "NODE_FAIL",
    ),
    AdviceRule(
        "short-job-short-limit",
        Severity.CRITICAL,
        _(
            "This job asked for less than an hour. Many short jobs load the scheduler: bundle them with GNU parallel or GLOST."
        ),
        "short-jobs",
        lambda f: f.state == "COMPLETED" and 0 < f.timelimit_minutes < 60,
    ),
    AdviceRule(
        "short-job",
        Severity.WARNING,
        _("This job ran for less than an hour. If you run many like it, bundle them into fewer, longer jobs."),
        "short-jobs",
        lambda f: f.state == "COMPLETED" and f.timelimit_minutes >= 60 and f.elapsed_seconds < 3600,
    ),
    # metrics
    AdviceRule(
        "serial-on-many-cores",
        Severity.CRITICAL,
        _("The job asked for {cores} cores but used less than one on average: it looks serial. Ask for one core."),
        "parallel-jobs",
        lambda f: f.started and f.cores > 1 and f.cores_used is not None and f.cores_used < 1,
        highlights=("cpu",),
    ),
    AdviceRule(
        "cpu-under-half",
        Severity.CRITICAL,
        _("The job used {cores_used:.1f} of its {cores} cores on average, less than half. Ask for fewer cores."),
        "cpu-efficiency",
        lambda f: f.started and f.cores > 1 and f.cores_used is not None and 1 <= f.cores_used < f.cores / 2,
        highlights=("cpu",),
    ),
    AdviceRule(
        "memory-under-tenth",
        Severity.CRITICAL,
        _(
            "The job used {mem_max_mb:.0f} MB at most of the {memory_mb} MB it asked for (less than 10%). Ask for less memory."
        ),
        "memory",
        lambda f: (
            f.started
            and not f.running
            and f.memory_mb > 0
            and f.mem_max_mb is not None
            and f.mem_max_mb < f.memory_mb / 10
        ),
        highlights=("mem",),
    ),
    AdviceRule(
        "idle-gpus",
        Severity.CRITICAL,
        # xgettext:no-python-format
        _(
            "The GPUs were busy {gpu_util:.0f}% of the time on average. Check that your program uses the GPUs, or run it on CPUs."
        ),
        "gpu-efficiency",
        lambda f: f.started and f.gpus > 0 and f.gpu_util is not None and f.gpu_util < 20,
        highlights=("gpu_utilization",),
    ),
    AdviceRule(
        "unseen-gpus",
        Severity.WARNING,
        _("The job had {gpus} GPU(s) but programs ran on only {gpus_seen}: the others stayed idle."),
        "gpu-efficiency",
        lambda f: f.started and f.gpus_seen is not None and 0 < f.gpus_seen < f.gpus,
        highlights=("gpu_utilization",),
    ),
    AdviceRule(
        "oversubscribed-threads",
        Severity.WARNING,
        _(
            "On average {threads_running:.1f} threads were running on {cores} cores: they compete for the cores. Match the thread count (e.g. OMP_NUM_THREADS) to the cores."
        ),
        "threads",
        lambda f: f.threads_running is not None and f.cores > 0 and f.threads_running > 1.25 * f.cores,
        highlights=("thread",),
    ),
    AdviceRule(
        "undersubscribed-threads",
        Severity.WARNING,
        _(
            "On average only {threads_running:.1f} threads were running on {cores} cores. Start as many threads or processes as cores."
        ),
        "threads",
        lambda f: f.threads_running is not None and f.cores > 1 and f.threads_running < 0.75 * f.cores,
        highlights=("thread",),
    ),
    AdviceRule(
        "multi-node",
        Severity.INFO,
        _(
            "The job ran on {nodes} nodes: make sure your program communicates between nodes (MPI); others use only the first node."
        ),
        "parallel-jobs",
        lambda f: f.nodes > 1,
    ),
    # submit line and #SBATCH directives
    AdviceRule(
        "singleton",
        Severity.INFO,
        _("The job waits for the user's other jobs of the same name (--dependency=singleton)."),
        "dependencies",
        lambda f: f.singleton,
    ),
    AdviceRule(
        "depends-on-jobs",
        Severity.INFO,
        _("The job depends on other jobs; it can only start once they allow it."),
        "dependencies",
        lambda f: bool(f.dependencies),
    ),
    AdviceRule(
        "has-dependents",
        Severity.INFO,
        _("Other jobs of yours wait for this one."),
        "dependencies",
        lambda f: bool(f.dependents),
    ),
    AdviceRule(
        "exclusive",
        Severity.INFO,
        _("The job asked for whole nodes (--exclusive): it waits longer, and is charged for every core of its nodes."),
        "exclusive",
        lambda f: f.exclusive,
    ),
    AdviceRule(
        "licenses",
        Severity.INFO,
        _("The job asked for licences ({licenses}); it waits until they are free."),
        "licenses",
        lambda f: bool(f.licenses),
    ),
    AdviceRule(
        "nodelist",
        Severity.INFO,
        _("The job asked for specific nodes ({requested_nodelist}); it can only run there."),
        "nodelist",
        lambda f: bool(f.requested_nodelist),
    ),
    AdviceRule(
        "excluded-nodes",
        Severity.WARNING,
        _(
            "The job excluded nodes ({excluded_nodes}). If a node misbehaves, tell us instead: excluding nodes makes jobs wait longer."
        ),
        "exclude",
        lambda f: bool(f.excluded_nodes),
    ),
    AdviceRule(
        "requeue",
        Severity.INFO,
        _("The job may be requeued (--requeue): make sure it can restart from the beginning or a checkpoint."),
        "requeue",
        lambda f: f.requeue,
    ),
    AdviceRule(
        "no-requeue",
        Severity.INFO,
        _("The job may not be requeued (--no-requeue): after a node failure it ends instead of starting again."),
        "requeue",
        lambda f: f.no_requeue,
    ),
    AdviceRule(
        "reservation",
        Severity.INFO,
        _("The job ran in the reservation {reservation}."),
        "reservations",
        lambda f: bool(f.reservation),
    ),
    AdviceRule(
        "switches",
        Severity.INFO,
        _("The job asked for a maximum number of network switches ({switches}); it may wait longer for such nodes."),
        "switches",
        lambda f: bool(f.switches),
    ),
    # the job script
    AdviceRule(
        "sleep",
        Severity.CRITICAL,
        _(
            "Line {line} of the script sleeps: the allocated resources sit idle meanwhile. Use job dependencies instead."
        ),
        "idle-waiting",
        line=re.compile(r"(?:^|[;&|]\s*)sleep\s+\d"),
    ),
    AdviceRule(
        "conda",
        Severity.CRITICAL,
        _(
            "Line {line} activates a conda environment. Conda installs conflict with the cluster's software: use a Python virtualenv."
        ),
        "python",
        line=re.compile(r"\b(?:conda|mamba)\s+activate\b|\bsource\s+activate\b"),
    ),
    AdviceRule(
        "gromacs-no-launcher",
        Severity.WARNING,
        _("Line {line} starts GROMACS' mdrun on {cores} cores without srun: start it with srun."),
        "gromacs",
        lambda f: "gromacs" in f.modules and f.cores > 1,
        line=re.compile(rf"^(?!.*\b{_LAUNCHER}\b).*\b(?:{_GMX})\b"),
    ),
    AdviceRule(
        "gromacs-thread-mismatch",
        Severity.CRITICAL,
        _("Line {line} runs mdrun with -nt different from the {cores} allocated cores."),
        "gromacs",
        lambda f: "gromacs" in f.modules,
        line=re.compile(rf"\b(?:{_GMX})\b.*\s-nt\s+(\d+)"),
        line_check=_nt_mismatch,
    ),
    AdviceRule(
        "gromacs-multinode-non-mpi",
        Severity.CRITICAL,
        _("Line {line} runs the non-MPI GROMACS binary on {nodes} nodes: use gmx_mpi."),
        "gromacs",
        lambda f: "gromacs" in f.modules and f.nodes > 1,
        line=re.compile(r"\b(?:gmx|gmx_d)\s+mdrun\b"),
    ),
    AdviceRule(
        "gromacs-grompp",
        Severity.WARNING,
        _("Line {line} runs grompp: preprocessing is quick and belongs on a login node, not in a job."),
        "gromacs",
        lambda f: "gromacs" in f.modules,
        line=re.compile(r"\bgrompp\b"),
    ),
    AdviceRule(
        "amber-cpu-on-gpu",
        Severity.CRITICAL,
        _("Line {line} runs Amber's CPU binary (pmemd.MPI) in a GPU job: use pmemd.cuda."),
        "amber",
        lambda f: "amber" in f.modules and f.gpus > 0,
        line=re.compile(r"\bpmemd\.MPI\b"),
    ),
    AdviceRule(
        "amber-gpu-on-cpu",
        Severity.CRITICAL,
        _("Line {line} runs Amber's GPU binary (pmemd.cuda) in a job without GPUs."),
        "amber",
        lambda f: "amber" in f.modules and f.gpus == 0,
        line=re.compile(r"\bpmemd\.cuda"),
    ),
    AdviceRule(
        "amber-multinode-no-srun",
        Severity.CRITICAL,
        _("Line {line} runs pmemd on {nodes} nodes without srun: start it with srun."),
        "amber",
        lambda f: "amber" in f.modules and f.nodes > 1,
        line=re.compile(rf"^(?!.*\b{_LAUNCHER}\b).*\bpmemd\b"),
    ),
    AdviceRule(
        "lammps-no-srun",
        Severity.CRITICAL,
        _("Line {line} runs LAMMPS on {cores} cores without srun: start it with srun."),
        "lammps",
        lambda f: bool({"lammps", "lammps-omp"} & f.modules) and f.cores > 1,
        line=re.compile(rf"^(?!.*\b{_LAUNCHER}\b).*\blmp\w*\b"),
    ),
)


# --- The JSON condition language --------------------------------------------------------------
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
    if op in ("in", "not_in") and not isinstance(value, list):
        raise RuleError(f"{where}: {op!r} needs a list value.")
    check = _OPERATORS[op]
    compared = frozenset(value) if op in ("in", "not_in") else value

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
        compile_condition(data["when"], where) if "when" in data else _always,
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
