"""Pure decoders for the values slurmdbd stores: states, exit codes, TRES, memory, times, QOS lists.

Node lists (hostlist expressions) are in :mod:`slurm.hostlists`, the JobID texts in :mod:`slurm.ids`.

Every function here is pure (no database, no settings) and tolerant: a value Slurm might store
but we did not expect decodes to an "unknown" result instead of raising, because one odd row
must not turn a job list into a 500. Section numbers refer to the domain reference (domain.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple, TypeGuard

from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import Exact
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# --- Sentinels (1.1) ------------------------------------------------------------------------
NO_VAL = 0xFFFFFFFE  # 4294967294
INFINITE = 0xFFFFFFFF  # 4294967295
NO_VAL16 = 0xFFFE
NO_VAL64 = 0xFFFFFFFFFFFFFFFE
INFINITE64 = 0xFFFFFFFFFFFFFFFF
MEM_PER_CPU = 0x8000000000000000  # 2**63, OR-ed into mem_req for --mem-per-cpu

# Static TRES ids (TRES_CPU ... TRES_PAGES in slurm.h). Only these are fixed; ids from 1001 on
# (gres/gpu, licences, ...) are assigned per site and must come from tres_table (TresCatalog).
TRES_CPU = 1
TRES_MEM = 2
TRES_ENERGY = 3
TRES_NODE = 4
TRES_BILLING = 5
TRES_FS_DISK = 6
TRES_VMEM = 7
TRES_PAGES = 8

Label = str | Promise


# --- Job state (1.5) ------------------------------------------------------------------------
JOB_STATE_BASE = 0xFF


class JobState(models.IntegerChoices):
    """Base job states (``enum job_states`` in slurm.h, identical in 22.05 and current Slurm).

    ``UNKNOWN`` is ours: it stands for any base value Slurm did not define (12 is only the
    JOB_END sentinel), so decoding never raises.
    """

    UNKNOWN = -1, _("Unknown")
    PENDING = 0, _("Pending")
    RUNNING = 1, _("Running")
    SUSPENDED = 2, _("Suspended")
    COMPLETED = 3, _("Completed")
    CANCELLED = 4, _("Cancelled")
    FAILED = 5, _("Failed")
    TIMEOUT = 6, _("Timeout")
    NODE_FAIL = 7, _("Node failure")
    PREEMPTED = 8, _("Preempted")
    BOOT_FAIL = 9, _("Boot failure")
    DEADLINE = 10, _("Deadline")  # TT calls 10 "End"; it is JOB_DEADLINE
    OUT_OF_MEMORY = 11, _("Out of memory")


# The names sacct and slurmrestd print for each base state.
BASE_STATE_NAMES: dict[JobState, str] = {
    JobState.UNKNOWN: "UNKNOWN",
    JobState.PENDING: "PENDING",
    JobState.RUNNING: "RUNNING",
    JobState.SUSPENDED: "SUSPENDED",
    JobState.COMPLETED: "COMPLETED",
    JobState.CANCELLED: "CANCELLED",
    JobState.FAILED: "FAILED",
    JobState.TIMEOUT: "TIMEOUT",
    JobState.NODE_FAIL: "NODE_FAIL",
    JobState.PREEMPTED: "PREEMPTED",
    JobState.BOOT_FAIL: "BOOT_FAIL",
    JobState.DEADLINE: "DEADLINE",
    JobState.OUT_OF_MEMORY: "OUT_OF_MEMORY",
}

# Flag bits in the order Slurm's job_state_string() tests them: the first one set names the state.
JOB_STATE_FLAGS: tuple[tuple[int, str], ...] = (
    (0x00008000, "COMPLETING"),
    (0x00800000, "STAGE_OUT"),
    (0x00004000, "CONFIGURING"),
    (0x00002000, "RESIZING"),
    (0x00000400, "REQUEUED"),
    (0x00100000, "REQUEUE_FED"),
    (0x00000800, "REQUEUE_HOLD"),
    (0x00001000, "SPECIAL_EXIT"),
    (0x00010000, "STOPPED"),
    (0x00080000, "REVOKED"),
    (0x00200000, "RESV_DEL_HOLD"),
    (0x00400000, "SIGNALING"),
)
_NAMED_FLAGS_MASK = sum(bit for bit, _name in JOB_STATE_FLAGS)

# The one label table: state names (as sacct prints them, and as status filters send them) to
# translated labels. Pages and filters both use it, so a filter value always has a label.
STATE_LABELS: dict[str, Label] = {
    **{name: state.label for state, name in BASE_STATE_NAMES.items()},
    "COMPLETING": _("Completing"),
    "STAGE_OUT": _("Staging out"),
    "CONFIGURING": _("Configuring"),
    "RESIZING": _("Resizing"),
    "REQUEUED": _("Requeued"),
    "REQUEUE_FED": _("Requeued (federation)"),
    "REQUEUE_HOLD": _("Requeued, held"),
    "SPECIAL_EXIT": _("Special exit"),
    "STOPPED": _("Stopped"),
    "REVOKED": _("Revoked"),
    "RESV_DEL_HOLD": _("Held (reservation deleted)"),
    "SIGNALING": _("Signaling"),
}

# Choices for a status filter, in a useful order: base states first, then the record-closing flags.
STATE_FILTER_CHOICES: tuple[tuple[str, Label], ...] = tuple(
    (name, STATE_LABELS[name])
    for name in (
        "PENDING",
        "RUNNING",
        "SUSPENDED",
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "REQUEUED",
        "RESIZING",
        "REVOKED",
    )
)


class StateInfo(NamedTuple):
    base: JobState
    flags: tuple[str, ...]  # every named flag set, in job_state_string() order
    name: str  # what sacct prints: the first flag set, else the base state's name

    @property
    def label(self) -> Label:
        return STATE_LABELS.get(self.name, JobState.UNKNOWN.label)


@lru_cache(maxsize=1024)  # a handful of distinct values; a page decodes hundreds of rows
def decode_state(raw: int | None) -> StateInfo:
    """Decode ``job_table.state`` (or ``step_table.state``) the way Slurm's job_state_string() does.

    slurmdbd closes requeued, resized and revoked records with the bare flags 1024, 8192 and
    524288, whose base bits are 0: decoding only ``raw & 0xff`` would call them PENDING.
    """
    if raw is None or raw < 0:
        return StateInfo(JobState.UNKNOWN, (), "UNKNOWN")
    flags = tuple(name for bit, name in JOB_STATE_FLAGS if raw & bit)
    base_value = raw & JOB_STATE_BASE
    # Look the value up instead of indexing a list with it: 12 (JOB_END) and anything above are not states.
    base = JobState(base_value) if base_value in JobState.values else JobState.UNKNOWN
    name = flags[0] if flags else BASE_STATE_NAMES[base]
    return StateInfo(base, flags, name)


def state_filter(name: str, field: str = "state") -> Q:
    """A ``Q`` selecting rows whose decoded state name is ``name`` (a ``STATE_FILTER_CHOICES`` value).

    Mirrors decode_state(): a flag name matches when its bit is set and no flag that comes
    before it in job_state_string() order is; a base name matches when no named flag is set.
    Raises ValueError for a name that is not a state, so a bad filter value is a 400, not "no rows".
    """
    masked: F | models.Expression
    for position, (bit, flag_name) in enumerate(JOB_STATE_FLAGS):
        if flag_name == name:
            earlier = sum(b for b, _n in JOB_STATE_FLAGS[:position])
            masked = F(field).bitand(earlier | bit)
            return Q(Exact(masked, bit))
    for state, state_name in BASE_STATE_NAMES.items():
        if state_name == name and state is not JobState.UNKNOWN:
            masked = F(field).bitand(_NAMED_FLAGS_MASK | JOB_STATE_BASE)
            return Q(Exact(masked, int(state)))
    raise ValueError(f"Unknown job state name {name!r}.")


# --- Exit codes (1.6) -----------------------------------------------------------------------
class ExitCode(NamedTuple):
    code: int
    signal: int

    def __str__(self) -> str:
        return f"{self.code}:{self.signal}"


def decode_exit_code(raw: int | None) -> ExitCode:
    """Split a raw wait status (``exit_code``, ``derived_ec``) into sacct's ``code:signal``.

    ``exit 3`` is stored as 768 (3 << 8); death by signal S leaves S in the low 7 bits. The step
    table's column is signed, so -2 is NO_VAL there. NO_VAL and NULL decode to 0:0.
    """
    if raw is None:
        return ExitCode(0, 0)
    status = raw & 0xFFFFFFFF
    if status == NO_VAL:
        return ExitCode(0, 0)
    low = status & 0x7F
    if low == 0:  # WIFEXITED
        code = (status >> 8) & 0xFF
        # sacct prints 128+N (a shell reporting signal N) as N, and so do we.
        return ExitCode(code - 128 if code >= 128 else code, 0)
    if low != 0x7F:  # WIFSIGNALED
        return ExitCode(0, low)
    return ExitCode(0, 0)  # stopped, not terminated


# --- TRES (1.7) -----------------------------------------------------------------------------
def parse_tres(text: str | None) -> dict[int, int]:
    """Parse a TRES string ``id=count,...`` into ``{id: count}``.

    Tolerates None, empty strings and malformed pairs (skipped). Energy and other counts of
    NO_VAL64/INFINITE64 ("not gathered") are left out. Parsing whole pairs is anchored by
    construction: id 11001 never matches 1001 as a substring search would.
    """
    result: dict[int, int] = {}
    if not text:
        return result
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep:
            continue
        try:
            tres_id, count = int(key), int(value)
        except ValueError:
            continue
        if count in (NO_VAL64, INFINITE64) or count < 0:
            continue
        result[tres_id] = count
    return result


def format_tres(tres: Mapping[int, int]) -> str:
    """The inverse of parse_tres, in id order as slurmdbd writes it."""
    return ",".join(f"{tres_id}={count}" for tres_id, count in sorted(tres.items()))


class TresRow(NamedTuple):
    id: int
    type: str
    name: str


class TresCatalog:
    """The site's ``tres_table``, for resolving TRES ids by (type, name) at run time.

    Dynamic ids (``gres/gpu``, ``gres/gpu:a100``, licences) differ between sites: build a
    catalog from the rows (``slurm.models.Tres.catalog()``) instead of hard-coding 1001.
    """

    def __init__(self, rows: Iterable[TresRow | tuple[int, str, str]]) -> None:
        self._by_id: dict[int, TresRow] = {}
        self._by_key: dict[tuple[str, str], int] = {}
        for row in rows:
            tres = TresRow(int(row[0]), str(row[1]), str(row[2] or ""))
            self._by_id[tres.id] = tres
            self._by_key[(tres.type, tres.name)] = tres.id

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tres_id: object) -> bool:
        return tres_id in self._by_id

    def id_of(self, type_: str, name: str = "") -> int | None:
        return self._by_key.get((type_, name))

    def name_of(self, tres_id: int) -> str:
        """``cpu``, ``mem``, ``gres/gpu:a100``: the TRES name as sacct prints it; the id if unknown."""
        row = self._by_id.get(tres_id)
        if row is None:
            return str(tres_id)
        return f"{row.type}/{row.name}" if row.name else row.type

    @property
    def cpu(self) -> int | None:
        return self.id_of("cpu")

    @property
    def mem(self) -> int | None:
        return self.id_of("mem")

    @property
    def node(self) -> int | None:
        return self.id_of("node")

    @property
    def billing(self) -> int | None:
        return self.id_of("billing")

    @property
    def energy(self) -> int | None:
        return self.id_of("energy")

    @property
    def gpu(self) -> int | None:
        """The generic ``gres/gpu`` id: the one to count GPUs with."""
        return self.id_of("gres", "gpu")

    @property
    def gpu_types(self) -> dict[int, str]:
        """Typed GPU ids to their model: ``{1002: "a100"}`` for ``gres/gpu:a100``."""
        return {
            row.id: row.name.removeprefix("gpu:")
            for row in self._by_id.values()
            if row.type == "gres" and row.name.startswith("gpu:")
        }

    def gpu_count(self, tres: Mapping[int, int]) -> int:
        """GPUs in a parsed TRES dict, from the generic id only.

        Slurm records one A100 both as ``gres/gpu=1`` and ``gres/gpu:a100=1``: adding the typed
        ids would double-count. Only a site without a generic ``gres/gpu`` row falls back to
        the typed counts.
        """
        if self.gpu is not None:
            return tres.get(self.gpu, 0)
        return sum(tres.get(tres_id, 0) for tres_id in self.gpu_types)

    def gpus_by_type(self, tres: Mapping[int, int]) -> dict[str, int]:
        """GPU counts per model from the typed ids, e.g. ``{"a100": 1}``; empty for untyped GPUs."""
        return {model: tres[tres_id] for tres_id, model in self.gpu_types.items() if tres.get(tres_id)}

    def named(self, tres: Mapping[int, int]) -> dict[str, int]:
        """``{1: 2, 1002: 1}`` to ``{"cpu": 2, "gres/gpu:a100": 1}``."""
        return {self.name_of(tres_id): count for tres_id, count in tres.items()}


# --- Memory (1.8) ---------------------------------------------------------------------------
class MemReq(NamedTuple):
    mb: int
    per_cpu: bool


def decode_mem_req(raw: int | None) -> MemReq:
    """Split ``mem_req`` into MB and its MEM_PER_CPU flag (2**63 + 500 is ``--mem-per-cpu=500``)."""
    if not raw or raw in (NO_VAL64, INFINITE64):
        return MemReq(0, False)
    return MemReq(raw & ~MEM_PER_CPU, bool(raw & MEM_PER_CPU))


def job_memory_mb(
    mem_req: int | None, *, cpus: int, nodes: int, tres_alloc: Mapping[int, int] | None = None
) -> int | None:
    """Total memory of a job in MB: the allocated TRES mem when known, else from ``mem_req``.

    ``mem_req`` is per node, or per CPU with the MEM_PER_CPU bit. A pending job has no nodes
    yet; count it as one. None when nothing is known (``--mem=0`` means "all of the node").
    """
    if tres_alloc and tres_alloc.get(TRES_MEM):
        return tres_alloc[TRES_MEM]
    mem = decode_mem_req(mem_req)
    if not mem.mb:
        return None
    return mem.mb * max(cpus, 1) if mem.per_cpu else mem.mb * max(nodes, 1)


# --- Times (1.1) ----------------------------------------------------------------------------
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the largest a datetime can hold


ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def epoch_set(value: int | None) -> TypeGuard[int]:
    """0 means "not set" in slurmdb; a value a datetime cannot hold is not a time either."""
    return value is not None and 0 < value <= _MAX_EPOCH


def epoch_to_datetime(value: int | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime, or None (not set)."""
    return datetime.fromtimestamp(value, tz=UTC) if epoch_set(value) else None


def epoch_to_iso(value: int | None) -> str | None:
    """``epoch_to_datetime(value)`` as ISO-8601 UTC (``2026-03-01T12:00:00Z``), in a quarter of its time."""
    return time.strftime(ISO_UTC, time.gmtime(value)) if epoch_set(value) else None


def decode_timelimit(raw: int | None) -> int | None:
    """``timelimit`` in minutes; None means no limit (INFINITE) or none recorded (NO_VAL: the
    partition's limit applies)."""
    if raw is None or raw in (INFINITE, NO_VAL):
        return None
    return raw


def format_timelimit(raw: int | None) -> str:
    """As sacct prints Timelimit: ``UNLIMITED``, ``Partition_Limit`` or ``[D-]HH:MM:SS``."""
    if raw is None or raw == INFINITE:
        return "UNLIMITED"
    if raw == NO_VAL:
        return "Partition_Limit"
    return format_duration(raw * 60)


def format_duration(seconds: float) -> str:
    """Seconds as sacct prints Elapsed: ``[D-]HH:MM:SS``."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def step_cpu_seconds(user_sec: int, user_usec: int, sys_sec: int, sys_usec: int) -> float:
    """CPU time of a step (user + system). A job's TotalCPU is the sum over its steps."""
    return user_sec + user_usec / 1e6 + sys_sec + sys_usec / 1e6


# --- Association QOS lists (1.12) -----------------------------------------------------------
def parse_qos_list(text: str | None) -> list[int]:
    """``,1,2,`` to ``[1, 2]``; empty means "inherit from the parent"."""
    return [int(part) for part in (text or "").split(",") if part.strip().isdigit()]


def parse_delta_qos(text: str | None) -> list[tuple[str, int]]:
    """``,+2,-3,`` to ``[("+", 2), ("-", 3)]``: relative QOS changes on an association."""
    deltas: list[tuple[str, int]] = []
    for part in (text or "").split(","):
        part = part.strip()
        if len(part) > 1 and part[0] in "+-" and part[1:].isdigit():
            deltas.append((part[0], int(part[1:])))
    return deltas
