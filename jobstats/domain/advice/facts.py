"""What advice rules look at and produce: a job's facts, a rule, a finding; and the script helpers."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields

from django.utils.functional import Promise


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


def always(facts: JobFacts) -> bool:
    return True


@dataclass(frozen=True)
class AdviceRule:
    id: str
    severity: Severity
    message: str | Promise
    anchor: str = ""
    when: Condition = always
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
