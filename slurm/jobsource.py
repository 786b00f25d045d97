"""One interface to finished jobs, with four backends tried in a configured order.

Every backend answers a :class:`JobQuery` with the same pandas DataFrame (:data:`COLUMNS`), so
billing and efficiency code never knows where the rows came from:

* ``database``: the Slurm accounting database through the read-only models (jobs, and their
  steps' CPU time summed per job, as sacct's TotalCPU is), read *packed* on MariaDB: GROUP_CONCAT
  returns a chunk of jobs as a few strings parsed by numpy and pandas, no Python object per row;
* ``slurmrestd``: ``/slurmdb/<version>/jobs`` with the JWT headers (domain 3);
* ``sacct``: ``sacct --parsable2`` as an argv list, with ``TZ=UTC`` and a timeout (domain 2.1);
* ``csv``: a file with sacct's column names (``User,JobID,Elapsed,TotalCPU,ReqTRES,End,State``
  and optionally ``Account,Cluster,Partition,Submit,AllocTRES``), the seed's last resort.

Rows are *finished job records* whose end lies in ``[query.start, query.end]`` (the end-time
cut-off): a job still running has no cost yet. ``(cluster, job_id, submit)`` identifies a record;
requeued jobs have several. Parsing TRES text is the slow part of a million rows, so each
backend parses each *distinct* TRES string once (``pd.factorize``) and maps the results back.

This module is part of the source app: it imports nothing from feature apps.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import requests
from django.conf import settings
from django.db import DatabaseError, NotSupportedError, connections
from django.db.models import Aggregate, BigIntegerField, Case, Count, F, Func, Max, Min, Sum, TextField, Value, When
from django.db.models.functions import Cast, Coalesce

from slurm.decoders import TresCatalog, decode_state, parse_tres
from slurm.models import Tres, cluster_models
from slurm.router import SLURM_DB_ALIAS
from slurm.sacct import parse_elapsed, parse_parsable2, parse_state, parse_timestamp, parse_total_cpu, parse_tres_text
from slurm.visibility import jobs_of_account, jobs_of_user_by_uid
from userportal.errors import DataSourceError

logger = logging.getLogger(__name__)

#: The columns of every backend's DataFrame, in this order.
COLUMNS: tuple[str, ...] = (
    "cluster",
    "job_id",  # Slurm's raw job id (int): an array task's own id, as sacct's JobIDRaw
    "submit",  # UTC; with cluster and job_id the unique key of a job record
    "user",
    "account",
    "partition",
    "state",  # base state name: COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    "end",  # UTC
    "elapsed",  # seconds (int)
    "total_cpu",  # CPU seconds used, summed over the steps (float)
    "req_tres",  # TRES text by name, sorted: "cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1"
    "alloc_tres",
    "req_cpus",
    "req_mem_mb",
    "req_gpus",
    "alloc_cpus",
    "alloc_mem_mb",
    "alloc_gpus",
    "gpu_type",  # the typed GPU model ("a100"), "" for none or untyped GPUs
)
INT_COLUMNS = ("job_id", "elapsed", "req_cpus", "req_mem_mb", "req_gpus", "alloc_cpus", "alloc_mem_mb", "alloc_gpus")
SOURCES = ("database", "slurmrestd", "sacct", "csv")


class JobSourceError(DataSourceError):
    source = "jobsource"


class JobSourceNotConfigured(JobSourceError):
    """The backend has no settings on this site (no URL, no file): skipped without a warning."""


class JobSourceAuthError(JobSourceError):
    """The backend refused our credentials (slurmrestd answers a bad token with a 500)."""


class JobSourceBadResponse(JobSourceError):
    status_code = 502


@dataclass(frozen=True)
class JobQuery:
    """Finished jobs ending in ``[start, end]`` on ``cluster``; of ``user`` (or ``account``) when given."""

    start: datetime
    end: datetime
    cluster: str
    user: str | None = None
    account: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("JobQuery times must be timezone-aware.")
        if self.end < self.start:
            raise ValueError("JobQuery end is before its start.")


class JobSource(Protocol):
    name: str

    def fetch(self, query: JobQuery) -> pd.DataFrame: ...


@dataclass
class FetchResult:
    frame: pd.DataFrame
    source: str
    failures: dict[str, str] = field(default_factory=dict)  # backend -> why it was skipped


# --- the frame -------------------------------------------------------------------------------
def empty_frame() -> pd.DataFrame:
    return finish_frame(pd.DataFrame({name: [] for name in COLUMNS}))


def finish_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Column order and types every backend returns; rows sorted by end time then job id."""
    frame = frame.reindex(columns=list(COLUMNS))
    for name in INT_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").fillna(0).astype("int64")
    frame["total_cpu"] = pd.to_numeric(frame["total_cpu"], errors="coerce").fillna(0.0).astype("float64")
    for name in ("submit", "end"):
        frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
    for name in ("cluster", "user", "account", "partition", "state", "req_tres", "alloc_tres", "gpu_type"):
        frame[name] = frame[name].astype(object).fillna("").astype(str)
    return frame.sort_values(["end", "job_id"], kind="stable").reset_index(drop=True)


def cut_off(frame: pd.DataFrame, query: JobQuery) -> pd.DataFrame:
    """Finished records ending inside the query window, of the query's user and account."""
    start, end = pd.Timestamp(query.start), pd.Timestamp(query.end)
    keep = frame["end"].notna() & (frame["end"] >= start) & (frame["end"] <= end)
    if query.user:
        keep &= frame["user"] == query.user
    if query.account:
        keep &= frame["account"] == query.account
    return frame[keep]


@dataclass(frozen=True)
class TresSummary:
    text: str
    cpus: int
    mem_mb: int
    gpus: int
    gpu_type: str


def summarize_named_tres(named: Mapping[str, int]) -> TresSummary:
    """CPU, memory, GPU count (generic gres/gpu, never plus the typed ones) and the GPU model."""
    typed = {name.removeprefix("gres/gpu:"): count for name, count in named.items() if name.startswith("gres/gpu:")}
    gpus = named.get("gres/gpu", sum(typed.values()))
    gpu_type = max(typed, key=lambda model: typed[model]) if typed else ""
    return TresSummary(
        format_named_tres(named), named.get("cpu", 0), named.get("mem", 0), gpus, gpu_type if gpus else ""
    )


def format_named_tres(named: Mapping[str, int]) -> str:
    """Named TRES as sacct prints them (sorted as strings; memory in MB with an ``M``)."""
    parts = [f"{name}={count}M" if name in ("mem", "vmem") else f"{name}={count}" for name, count in named.items()]
    return ",".join(sorted(parts))


def tres_columns(texts: pd.Series, parse: Callable[[str], TresSummary], prefix: str) -> dict[str, Any]:
    """Parse each distinct TRES string once, and spread the results over the rows."""
    return tres_arrays(*_factorize_text(texts), parse, prefix)


def tres_arrays(
    codes: np.ndarray, uniques: np.ndarray, parse: Callable[[str], TresSummary], prefix: str
) -> dict[str, Any]:
    """The TRES columns of ``prefix`` from factorized texts: one parse per distinct text."""
    if len(uniques):  # ``uniques`` may repeat a text (the database source's are combinations of four)
        repeated, distinct = pd.factorize(np.asarray(uniques, dtype=object))
        codes = repeated[codes]
    else:
        distinct = uniques
    parsed = [parse(str(text)) for text in distinct]
    return {
        f"{prefix}_tres": np.array([p.text for p in parsed], dtype=object)[codes],
        f"{prefix}_cpus": np.array([p.cpus for p in parsed], dtype="int64")[codes],
        f"{prefix}_mem_mb": np.array([p.mem_mb for p in parsed], dtype="int64")[codes],
        f"{prefix}_gpus": np.array([p.gpus for p in parsed], dtype="int64")[codes],
        f"{prefix}_gpu_type": np.array([p.gpu_type for p in parsed], dtype=object)[codes],
    }


def _factorize_text(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct texts (None and NaN read as ""): hash a million strings once, not per use."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes, np.array(["" if _missing(u) else str(u) for u in uniques], dtype=object)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _text_column(values: pd.Series) -> np.ndarray:
    codes, uniques = _factorize_text(values)
    return uniques[codes]


def _ints(values: pd.Series) -> np.ndarray:
    if values.dtype.kind in "iu":
        return values.to_numpy(dtype="int64")
    return pd.to_numeric(values, errors="coerce").fillna(0).to_numpy(dtype="int64")


def _floats(values: pd.Series) -> np.ndarray:
    if values.dtype.kind in "iuf":
        return values.to_numpy(dtype="float64")
    return pd.to_numeric(values.astype(object).map(float), errors="coerce").fillna(0.0).to_numpy(dtype="float64")


def _utc_seconds(seconds: np.ndarray) -> pd.Series:
    return pd.Series((seconds * 1_000_000).astype("datetime64[us]")).dt.tz_localize("UTC")


def apply_tres(frame: pd.DataFrame, parse: Callable[[str], TresSummary]) -> pd.DataFrame:
    """Replace raw ``req_tres``/``alloc_tres`` with the normalised text and counts; pick the GPU type."""
    req = tres_columns(frame["req_tres"], parse, "req")
    alloc = tres_columns(frame["alloc_tres"], parse, "alloc")
    frame = frame.assign(**req, **alloc)
    # The model of the GPUs a job had; a job that never ran shows what it asked for.
    frame["gpu_type"] = np.where(frame["alloc_gpu_type"] != "", frame["alloc_gpu_type"], frame["req_gpu_type"])
    return frame.drop(columns=["alloc_gpu_type", "req_gpu_type"])


def _sacct_tres(text: str) -> TresSummary:
    try:
        return summarize_named_tres(parse_tres_text(text))
    except ValueError:
        logger.warning("unreadable TRES text %r", text)
        return summarize_named_tres({})


# --- database --------------------------------------------------------------------------------
#: Rows read per fetchmany() on the row path (other vendors, and the packed path's fallback).
DB_CHUNK_ROWS = 100_000
#: Job ids (``job_db_inx``) per packed query of a whole-cluster window: at most that many rows,
#: about 6 MB of text at ~140 bytes a row. MariaDB cuts a GROUP_CONCAT at max_allowed_packet
#: (16 MB by default, as slurmdbd's documentation asks); a chunk that was cut is read again in halves.
PACKED_CHUNK_IDS = 40_000
#: Connections reading the chunks of a whole-cluster window at once: MariaDB runs a query on one
#: core, and converting each row is most of a million-job fetch's time.
PACKED_CONNECTIONS = 2
#: Vendors whose GROUP_CONCAT packs rows into one string (slurmdbd's MariaDB/MySQL; SQLite for the
#: demo and the tests). Others (PostgreSQL in the tests) read rows.
PACKED_VENDORS = ("mysql", "sqlite")
#: A job's integer columns, in this order (``run_seconds`` is computed in SQL), and its texts in
#: two strings per row: each pair has few distinct values (hundreds or thousands, not one per
#: job, as the four together nearly have), each parsed once.
INT_FIELDS = ("job_db_inx", "id_job", "time_submit", "id_assoc", "state", "time_end", "run_seconds")
TEXT_GROUPS = (("account", "partition"), ("tres_req", "tres_alloc"))
VALUE_SEPARATOR = ","
TEXT_SEPARATOR = "\t"
ROW_SEPARATOR = "\n"
_SEPARATORS = frozenset((VALUE_SEPARATOR, TEXT_SEPARATOR, ROW_SEPARATOR))
#: MariaDB's warning "Row N was cut by GROUP_CONCAT()".
ER_CUT_VALUE_GROUP_CONCAT = 1260
#: Selected jobs per job id in their id range from which steps are read by id range, not by a join.
STEP_RANGE_DENSITY = 0.25


def _separator(separator: str) -> str:
    if separator not in _SEPARATORS:  # it is written into the SQL text: constants only
        raise ValueError(f"unsupported separator {separator!r}")
    return separator


class Joined(Func):
    """Values joined by a constant separator in one string: ``CONCAT_WS`` (``||`` on SQLite).

    No argument may be NULL (CONCAT_WS skips NULLs, ``||`` makes the whole NULL): coalesce texts.
    """

    output_field = TextField()

    def __init__(self, *expressions: Any, separator: str) -> None:
        super().__init__(*expressions, output_field=TextField())
        self.separator = _separator(separator)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        template = f"CONCAT_WS('{self.separator}', %(expressions)s)"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        joiner = f" || '{self.separator}' || "
        return super().as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=joiner, **extra_context)


class GroupConcat(Aggregate):
    """The rows' values in one string, in the order the rows are read (MariaDB/MySQL and SQLite).

    Several GroupConcat of one query see the same rows in the same order. MariaDB cuts the
    result at ``group_concat_max_len`` (at most max_allowed_packet) with warning 1260.
    """

    function = "GROUP_CONCAT"
    output_field = TextField()

    def __init__(self, expression: Any, separator: str) -> None:
        super().__init__(expression, output_field=TextField())
        self.separator = _separator(separator)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        raise NotSupportedError(f"GROUP_CONCAT is not available on {connection.vendor}")

    def as_mysql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = f"%(function)s(%(distinct)s%(expressions)s SEPARATOR '{self.separator}')"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = f"%(function)s(%(distinct)s%(expressions)s, '{self.separator}')"
        return super().as_sql(compiler, connection, template=template, **extra_context)


def _run_seconds() -> Any:
    big = BigIntegerField()
    return Case(
        When(time_start__gt=0, then=Cast("time_end", big) - Cast("time_start", big) - Cast("time_suspended", big)),
        default=Value(0),
        output_field=big,
    )


def _int_values() -> list[Any]:
    return [*(F(name) for name in INT_FIELDS[:-1]), _run_seconds()]


def _texts(model: Any, group: Sequence[str]) -> Joined:
    """A group's texts joined; NULL only where the schema allows it (``account``) reads as ""."""
    values = [
        Coalesce(name, Value(""), output_field=TextField()) if model._meta.get_field(name).null else F(name)
        for name in group
    ]
    return Joined(*values, separator=TEXT_SEPARATOR)


def _step_values() -> list[Any]:
    return [F("job_db_inx"), F("user_sec") + F("sys_sec"), F("user_usec") + F("sys_usec")]


def _records(rows: Sequence[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """Rows as column arrays: int64 where every value is an int, else objects (no per-cell inference)."""
    data: dict[str, np.ndarray] = {}
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        array = None
        if isinstance(values[0], int):
            try:
                array = np.array(values, dtype="int64")
            except (TypeError, ValueError, OverflowError):  # a NULL, or an unsigned value past int64
                array = None
        data[name] = array if array is not None else np.array(values, dtype=object)
    return pd.DataFrame(data, copy=False)


#: The row path's text columns (each on its own: values may hold any character).
ROW_TEXTS = tuple(f"text_{name}" for group in TEXT_GROUPS for name in group)


def _job_values(jobs: Any) -> Any:
    texts = {
        f"text_{name}": Coalesce(name, Value(""), output_field=TextField()) for group in TEXT_GROUPS for name in group
    }
    return jobs.annotate(run_seconds=_run_seconds(), **texts).values_list(*INT_FIELDS, *ROW_TEXTS)


@dataclass
class _JobColumns:
    """The selected jobs as arrays: their integers, and a code per row into their distinct texts."""

    ints: np.ndarray  # (rows, len(INT_FIELDS)) int64
    codes: list[np.ndarray]  # per text group: (rows,) index into its texts
    texts: list[np.ndarray]  # per text group: its distinct values, (distinct, len(group)) strings

    def __len__(self) -> int:
        return len(self.ints)

    @classmethod
    def empty(cls) -> _JobColumns:
        return cls(
            np.zeros((0, len(INT_FIELDS)), dtype="int64"),
            [np.zeros(0, dtype="intp") for _ in TEXT_GROUPS],
            [np.zeros((0, len(group)), dtype=object) for group in TEXT_GROUPS],
        )


class _TextIndex:
    """One code per distinct text of a group across the chunks of a fetch, given as the chunks arrive."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._codes: dict[tuple[str, ...], int] = {}

    def recode(self, codes: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """A chunk's codes in this index (a chunk has at most thousands of distinct texts)."""
        index = self._codes
        keys = (tuple(values) for values in texts.tolist())
        local = np.fromiter((index.setdefault(key, len(index)) for key in keys), dtype="intp", count=len(texts))
        return local[codes]

    def texts(self) -> np.ndarray:
        return _table(list(self._codes), self.width)  # in code order (dicts keep insertion order)


def _table(rows: Sequence[Sequence[str]], width: int) -> np.ndarray:
    """Rows of ``width`` strings as a (rows, width) object array."""
    table = np.empty((len(rows), width), dtype=object)
    for i, values in enumerate(rows):
        table[i] = values
    return table


#: Steps as arrays (job_db_inx, seconds, microseconds): one row per step or per job, summed per job in _build.
StepArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _no_steps() -> StepArrays:
    return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")


def _concat_steps(parts: Sequence[StepArrays]) -> StepArrays:
    if not parts:
        return _no_steps()
    inx, sec, usec = zip(*parts, strict=True)
    return np.concatenate(inx), np.concatenate(sec), np.concatenate(usec)


@dataclass
class _Packed:
    """What one packed read returned, still text; parsed in the calling thread."""

    rows: int
    ints: str | None
    texts: list[str | None]  # per text group
    cut: bool
    step_rows: int = 0
    steps: str | None = None


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _parse_ints(text: str | None, rows: int, width: int) -> np.ndarray | None:
    """``rows`` × ``width`` integers written with VALUE_SEPARATOR; None unless exactly that many."""
    if rows == 0:
        return np.zeros((0, width), dtype="int64")
    if not text:
        return None
    values = np.fromstring(text, dtype="int64", sep=VALUE_SEPARATOR)  # C parsing; stops at a bad value
    if values.size != rows * width:
        return None
    return values.reshape(rows, width)


def _parse_texts(text: str | None, rows: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes and distinct texts of ``rows`` texts of ``width`` joined values; None if one holds a separator."""
    if rows == 0:
        return np.zeros(0, dtype="intp"), _table([], width)
    if text is None:
        return None
    lines = text.split(ROW_SEPARATOR)
    if len(lines) != rows:
        return None
    codes, uniques = pd.factorize(np.array(lines, dtype=object))
    values = [str(line).split(TEXT_SEPARATOR) for line in uniques]
    if any(len(v) != width for v in values):  # a value holding a tab
        return None
    return codes, _table(values, width)


def _parse_packed(packed: _Packed) -> tuple[_JobColumns, StepArrays] | None:
    if packed.cut:
        return None
    ints = _parse_ints(packed.ints, packed.rows, len(INT_FIELDS))
    steps = _parse_ints(packed.steps, packed.step_rows, 3)
    if ints is None or steps is None:
        return None
    codes, texts = [], []
    for text, group in zip(packed.texts, TEXT_GROUPS, strict=True):
        parsed = _parse_texts(text, packed.rows, len(group))
        if parsed is None:
            return None
        codes.append(parsed[0])
        texts.append(parsed[1])
    return _JobColumns(ints, codes, texts), (steps[:, 0], steps[:, 1], steps[:, 2])


def _id_ranges(low: int, high: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size - 1, high)) for start in range(low, high + 1, size)]


def _strings(values: np.ndarray, codes: np.ndarray) -> Any:
    """``values[codes]`` as the frame's string column: the few values converted once, then one take."""
    return pd.Series(values, dtype=object).astype(str).array.take(codes)


def _cpu_seconds(job_inx: np.ndarray, steps: StepArrays) -> np.ndarray:
    """Per job, its steps' seconds plus microseconds / 1e6 (sums of integers: exact, whatever the order)."""
    step_inx, sec, usec = steps
    if not len(step_inx) or not len(job_inx):
        return np.zeros(len(job_inx))
    by_inx = np.argsort(job_inx, kind="stable")
    ordered = job_inx[by_inx]
    at = np.minimum(np.searchsorted(ordered, step_inx), len(ordered) - 1)
    hit = ordered[at] == step_inx  # steps of unselected jobs inside an id range are dropped
    rows = by_inx[at[hit]]
    seconds = np.bincount(rows, weights=sec[hit].astype("float64"), minlength=len(job_inx))
    micros = np.bincount(rows, weights=usec[hit].astype("float64"), minlength=len(job_inx))
    return seconds + micros / 1e6


class DatabaseSource:
    """The Slurm accounting database through the read-only models.

    Built for a million rows (bench/billing/). The window is a ``time_end`` range. A whole
    cluster's window is first bounded by job id (an index-only range of ``rollup2``), then read in
    chunks of PACKED_CHUNK_IDS ids, each a primary-key range: one query per chunk returns the
    chunk's jobs *packed* (GROUP_CONCAT: their integers in one string, their texts in two more)
    and one its steps, so no Python object is made per row or per value. On MariaDB the chunks
    are read by PACKED_CONNECTIONS connections at once (outside a transaction: a test's
    uncommitted rows are not visible to other connections). A user's or an account's jobs are
    packed by one query, and their steps summed in SQL. A packed read that MariaDB cut (longer
    than max_allowed_packet) is read again in halves; one that cannot be parsed (a text holding
    a tab or a newline) is read row by row, as are all reads on other vendors.
    """

    name = "database"

    def __init__(self, using: str = SLURM_DB_ALIAS, *, workers: int | None = None) -> None:
        self.using = using
        self.workers = workers  # connections for a whole-cluster window; None: PACKED_CONNECTIONS

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        try:
            return self._fetch(query)
        except DatabaseError as exc:
            raise JobSourceError(f"slurmdb: {exc}") from exc

    def _fetch(self, query: JobQuery) -> pd.DataFrame:
        models = cluster_models(query.cluster)
        if query.user:
            # Same rows as jobs_of_user(), found through the job table's (id_user, time_end, ...)
            # index instead of every row of the user's associations.
            jobs = jobs_of_user_by_uid(query.user, query.cluster)
        elif query.account:
            jobs = jobs_of_account(query.account, query.cluster)
        else:
            jobs = models.job.objects.filter(deleted=0)
        start, end = int(query.start.timestamp()), int(query.end.timestamp())
        jobs = jobs.using(self.using).filter(time_end__gte=start, time_end__lte=end).order_by()
        steps = models.step.objects.using(self.using).order_by()
        packed = connections[self.using].vendor in PACKED_VENDORS
        if query.user or query.account:
            selection = self._packed_selection(jobs) if packed else None
            columns = selection if selection is not None else self._row_columns(jobs)
            step_arrays = self._row_steps(jobs, steps, columns) if len(columns) else _no_steps()
        else:
            # The whole cluster: bound the primary key by the window first (an index-only range of
            # rollup2), so the server reads the window's part of the table, not all of it.
            found = self._id_bounds(models.job, start, end)
            if found is None:
                return empty_frame()
            low, high = found
            if packed:
                columns, step_arrays = self._read_ranges(jobs, steps, _id_ranges(low, high, PACKED_CHUNK_IDS))
            else:
                columns = self._row_columns(jobs.filter(job_db_inx__gte=low, job_db_inx__lte=high))
                step_arrays = self._row_steps(jobs, steps, columns) if len(columns) else _no_steps()
        if not len(columns):
            return empty_frame()
        assoc_ids = [int(a) for a in pd.unique(columns.ints[:, INT_FIELDS.index("id_assoc")])]
        users = dict(
            models.assoc.objects.using(self.using).filter(id_assoc__in=assoc_ids).values_list("id_assoc", "user")
        )
        catalog = Tres.catalog(using=self.using)
        return self._build(columns, step_arrays, users, catalog, query.cluster)

    def _id_bounds(self, job: Any, start: int, end: int) -> tuple[int, int] | None:
        """The lowest and highest job id ending in [start, end]: an index-only range of rollup2.

        Only indexed columns (no ``deleted``): rollup2 answers alone, and a superset bounds as
        well. With several connections, each half of the window is bounded by its own.
        """

        def bounds(first: int, last: int) -> dict[str, Any]:
            window = job.objects.using(self.using).filter(time_end__gte=first, time_end__lte=last)
            return window.order_by().aggregate(low=Min("job_db_inx"), high=Max("job_db_inx"))

        if self._workers(2) > 1 and end > start:
            middle = (start + end) // 2
            found = self._in_threads([lambda: bounds(start, middle), lambda: bounds(middle + 1, end)])
        else:
            found = [bounds(start, end)]
        lows = [int(f["low"]) for f in found if f["low"] is not None]
        highs = [int(f["high"]) for f in found if f["high"] is not None]
        return (min(lows), max(highs)) if lows else None

    def _in_threads(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Each call on a thread and a connection of its own; their results, or the first error."""
        results: list[Any] = [None] * len(calls)
        errors: list[BaseException] = []

        def run(i: int, call: Callable[[], Any]) -> None:
            try:
                results[i] = call()
            except BaseException as exc:  # handed to the calling thread, which raises it
                errors.append(exc)
            finally:
                connections[self.using].close()  # this thread's own connection

        threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    # -- packed reads (GROUP_CONCAT) --
    def _prepare(self, connection: Any) -> int | None:
        """Let a GROUP_CONCAT be as long as a packet may be (MariaDB's default: 1 KB); return that length.

        None: no limit (SQLite's string limit is an error, not a cut).
        """
        if connection.vendor != "mysql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION group_concat_max_len = @@global.max_allowed_packet")
            cursor.execute("SELECT @@session.group_concat_max_len")
            return int(cursor.fetchone()[0])

    @staticmethod
    def _was_cut(connection: Any, limit: int | None, values: Sequence[str | None]) -> bool:
        """Whether MariaDB cut one of ``values``: its warning 1260, or a value as long as the limit.

        The cut can fall inside the last value, which then still parses: the length is checked
        too (a value a few bytes short of the limit counts: the cut keeps whole characters).
        """
        if limit is None:
            return False
        for value in values:
            if value is not None and len(value) * 4 >= limit - 4 and len(value.encode()) >= limit - 4:
                return True
        with connection.cursor() as cursor:
            cursor.execute("SHOW WARNINGS")
            return any(int(row[1]) == ER_CUT_VALUE_GROUP_CONCAT for row in cursor.fetchall())

    def _read_packed(self, jobs: Any, steps: Any | None, bounds: tuple[int, int] | None, limit: int | None) -> _Packed:
        """One chunk's jobs (and steps, for an id range) packed, on the calling thread's connection.

        ``limit``: what :meth:`_prepare` returned for that connection.
        """
        connection = connections[self.using]
        if bounds is not None:
            jobs = jobs.filter(job_db_inx__gte=bounds[0], job_db_inx__lte=bounds[1])
        texts = {
            f"texts_{i}": GroupConcat(_texts(jobs.model, group), ROW_SEPARATOR) for i, group in enumerate(TEXT_GROUPS)
        }
        found = jobs.aggregate(
            rows=Count("*"),
            ints=GroupConcat(Joined(*_int_values(), separator=VALUE_SEPARATOR), VALUE_SEPARATOR),
            **texts,
        )
        packed = _Packed(int(found["rows"]), _text(found["ints"]), [_text(found[name]) for name in texts], False)
        packed.cut = self._was_cut(connection, limit, [packed.ints, *packed.texts])
        if steps is not None and bounds is not None and packed.rows and not packed.cut:
            summed = steps.filter(job_db_inx__gte=bounds[0], job_db_inx__lte=bounds[1]).aggregate(
                rows=Count("*"), values=GroupConcat(Joined(*_step_values(), separator=VALUE_SEPARATOR), VALUE_SEPARATOR)
            )
            packed.step_rows, packed.steps = int(summed["rows"]), _text(summed["values"])
            packed.cut = self._was_cut(connection, limit, [packed.steps])
        return packed

    def _packed_selection(self, jobs: Any) -> _JobColumns | None:
        """A user's or an account's jobs in one packed query; None when it must be read row by row."""
        limit = self._prepare(connections[self.using])
        parsed = _parse_packed(self._read_packed(jobs, None, None, limit))
        return parsed[0] if parsed else None

    def _workers(self, chunks: int) -> int:
        connection = connections[self.using]
        if connection.vendor != "mysql":
            return 1
        if self.workers is not None:
            count = self.workers
        else:
            count = 1 if connection.in_atomic_block else PACKED_CONNECTIONS
        return max(1, min(count, chunks))

    def _read_ranges(self, jobs: Any, steps: Any, ranges: list[tuple[int, int]]) -> tuple[_JobColumns, StepArrays]:
        """The jobs and steps of consecutive id ranges, packed, in id order."""
        parts: dict[int, tuple[np.ndarray, list[np.ndarray], StepArrays]] = {}
        indexes = [_TextIndex(len(group)) for group in TEXT_GROUPS]

        def take(bounds: tuple[int, int], packed: _Packed) -> list[tuple[int, int]]:
            """Keep a chunk (parsed while the next ones are read); or the halves to read instead of a cut one."""
            parsed = _parse_packed(packed)
            if parsed is None and packed.cut and bounds[1] > bounds[0]:
                middle = (bounds[0] + bounds[1]) // 2
                return [(bounds[0], middle), (middle + 1, bounds[1])]
            columns, step_arrays = parsed or self._rows_of_range(jobs, steps, bounds)
            codes = [
                index.recode(group_codes, texts)
                for index, group_codes, texts in zip(indexes, columns.codes, columns.texts, strict=True)
            ]
            parts[bounds[0]] = (columns.ints, codes, step_arrays)
            return []

        workers = self._workers(len(ranges))
        if workers > 1:
            self._read_in_threads(jobs, steps, ranges, workers, take)
        else:
            limit = self._prepare(connections[self.using])
            todo = deque(ranges)
            while todo:
                bounds = todo.popleft()
                todo.extendleft(reversed(take(bounds, self._read_packed(jobs, steps, bounds, limit))))
        ordered = [parts[start] for start in sorted(parts)]
        if not ordered:
            return _JobColumns.empty(), _no_steps()
        columns = _JobColumns(
            np.concatenate([p[0] for p in ordered]),
            [np.concatenate([p[1][g] for p in ordered]) for g in range(len(TEXT_GROUPS))],
            [index.texts() for index in indexes],
        )
        return columns, _concat_steps([p[2] for p in ordered])

    def _read_in_threads(
        self,
        jobs: Any,
        steps: Any,
        ranges: list[tuple[int, int]],
        workers: int,
        take: Callable[[tuple[int, int], _Packed], list[tuple[int, int]]],
    ) -> None:
        """Read chunks on ``workers`` connections of their own; parse them here as they come."""
        todo: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        done: queue.SimpleQueue[tuple[tuple[int, int] | None, _Packed | BaseException]] = queue.SimpleQueue()
        stop = threading.Event()

        def work() -> None:
            try:
                limit = self._prepare(connections[self.using])
                while not stop.is_set() and (bounds := todo.get()) is not None:
                    try:
                        done.put((bounds, self._read_packed(jobs, steps, bounds, limit)))
                    except Exception as exc:  # handed to the calling thread, which raises it
                        done.put((bounds, exc))
            except BaseException as exc:  # no connection, or an interrupt: the calling thread raises it
                done.put((None, exc))
            finally:
                connections[self.using].close()  # this thread's own connection

        for chunk in ranges:
            todo.put(chunk)
        pending = len(ranges)
        threads = [threading.Thread(target=work, name=f"jobsource-{i}", daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        try:
            while pending:
                read, result = done.get()
                if isinstance(result, BaseException):
                    raise result
                assert read is not None
                pending -= 1
                for half in take(read, result):
                    todo.put(half)
                    pending += 1
        finally:
            stop.set()
            for _thread in threads:
                todo.put(None)
            for thread in threads:
                thread.join()

    # -- row reads (other vendors, and fallbacks) --
    def _row_columns(self, selected: Any) -> _JobColumns:
        frame = self._frame(_job_values(selected), [*INT_FIELDS, *ROW_TEXTS])
        if frame.empty:
            return _JobColumns.empty()
        ints = np.column_stack([_ints(frame[name]) for name in INT_FIELDS])
        codes, texts, column = [], [], 0
        for group in TEXT_GROUPS:
            values = [_text_column(frame[ROW_TEXTS[column + k]]) for k in range(len(group))]
            column += len(group)
            group_codes, distinct = pd.factorize(pd.Series(list(zip(*values, strict=True)), dtype=object))
            codes.append(group_codes)
            texts.append(_table([tuple(v) for v in distinct], len(group)))
        return _JobColumns(ints, codes, texts)

    def _rows_of_range(self, jobs: Any, steps: Any, bounds: tuple[int, int]) -> tuple[_JobColumns, StepArrays]:
        columns = self._row_columns(jobs.filter(job_db_inx__gte=bounds[0], job_db_inx__lte=bounds[1]))
        return columns, self._step_rows(*self._summed_steps(steps, *bounds).query.get_compiler(self.using).as_sql())

    @staticmethod
    def _summed_steps(steps: Any, low: int, high: int) -> Any:
        return (
            steps.filter(job_db_inx__gte=low, job_db_inx__lte=high)
            .values("job_db_inx")
            .annotate(sec=Sum(F("user_sec") + F("sys_sec")), usec=Sum(F("user_usec") + F("sys_usec")))
            .order_by()
            .values_list("job_db_inx", "sec", "usec")
        )

    def _row_steps(self, jobs: Any, steps: Any, columns: _JobColumns) -> StepArrays:
        """CPU time of the selected jobs' steps, summed per job in SQL over those steps only.

        Job ids (``job_db_inx``) grow with submission, so a time window selects a dense id range:
        then one primary-key range scan of the steps (the few steps of unselected jobs inside it
        are dropped when the sums are matched to the jobs). A sparse selection (one user over a
        long window) joins the job query instead, driven from the selected jobs.
        """
        inx = columns.ints[:, 0]
        low, high = int(inx.min()), int(inx.max())
        if len(inx) >= STEP_RANGE_DENSITY * (high - low + 1):
            sql, params = self._summed_steps(steps, low, high).query.get_compiler(using=self.using).as_sql()
            return self._step_rows(sql, tuple(params))
        connection = connections[self.using]
        qn = connection.ops.quote_name
        inner, params = jobs.values_list("job_db_inx").query.get_compiler(using=self.using).as_sql()
        step = qn(steps.model._meta.db_table)
        sql = (
            f"SELECT s.{qn('job_db_inx')}, SUM(s.{qn('user_sec')} + s.{qn('sys_sec')}),"  # noqa: S608 - names quoted
            f" SUM(s.{qn('user_usec')} + s.{qn('sys_usec')})"
            f" FROM {step} s INNER JOIN ({inner}) j ON s.{qn('job_db_inx')} = j.{qn('job_db_inx')}"
            f" GROUP BY s.{qn('job_db_inx')}"
        )
        return self._step_rows(sql, tuple(params))

    def _step_rows(self, sql: str, params: Sequence[Any]) -> StepArrays:
        frame = self._frame_sql(sql, tuple(params), ["job_db_inx", "sec", "usec"])
        if frame.empty:
            return _no_steps()
        return _ints(frame["job_db_inx"]), _ints(frame["sec"]), _ints(frame["usec"])

    def _frame(self, queryset: Any, columns: list[str]) -> pd.DataFrame:
        # A raw cursor: a million rows through values_list cost seconds of Python per row.
        sql, params = queryset.query.get_compiler(using=self.using).as_sql()
        return self._frame_sql(sql, tuple(params), columns)

    def _frame_sql(self, sql: str, params: tuple[Any, ...], columns: list[str]) -> pd.DataFrame:
        connection = connections[self.using]
        chunks: list[pd.DataFrame] = []
        if connection.vendor == "mysql":
            from MySQLdb.cursors import SSCursor  # the server streams rows as it finds them

            connection.ensure_connection()
            with connection.wrap_database_errors:
                cursor = connection.connection.cursor(SSCursor)
                try:
                    cursor.execute(sql, params)
                    while rows := cursor.fetchmany(DB_CHUNK_ROWS):
                        chunks.append(_records(rows, columns))
                finally:
                    cursor.close()
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(DB_CHUNK_ROWS):
                    chunks.append(_records(rows, columns))
        if not chunks:
            return pd.DataFrame({name: [] for name in columns})
        return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)

    @staticmethod
    def _build(
        columns: _JobColumns, steps: StepArrays, users: Mapping[int, str], catalog: TresCatalog, cluster: str
    ) -> pd.DataFrame:
        """The typed, sorted frame straight from column arrays (what finish_frame makes, without its passes)."""
        inx, id_job, submit, assoc, state, time_end, run_seconds = (
            np.ascontiguousarray(columns.ints[:, k]) for k in range(len(INT_FIELDS))
        )
        order = np.lexsort((id_job, time_end))  # rows sorted by end time then job id, as finish_frame sorts
        state_codes, states = pd.factorize(state[order])
        state_names = [decode_state(int(s)).name for s in states]
        assoc_codes, assocs = pd.factorize(assoc[order])
        user_names = [users.get(int(a), "") or "" for a in assocs]
        names, tres = (codes[order] for codes in columns.codes)
        account, partition = columns.texts[0].T
        req_text, alloc_text = columns.texts[1].T

        @functools.cache
        def parse(text: str) -> TresSummary:  # each distinct TRES text once
            return summarize_named_tres(catalog.named(parse_tres(text)))

        # Per distinct text (thousands), then one take per column: no per-row Python object.
        req = tres_arrays(np.arange(len(req_text)), req_text, parse, "req")
        alloc = tres_arrays(np.arange(len(alloc_text)), alloc_text, parse, "alloc")
        alloc_gpu_type, req_gpu_type = alloc.pop("alloc_gpu_type"), req.pop("req_gpu_type")
        gpu_type = np.where(alloc_gpu_type != "", alloc_gpu_type, req_gpu_type)  # a job that never ran: its request
        per_text = {
            "account": _strings(account, names),
            "partition": _strings(partition, names),
            "gpu_type": _strings(gpu_type, tres),
            **{
                name: _strings(values, tres) if values.dtype == object else values[tres]
                for name, values in (req | alloc).items()
            },
        }
        return pd.DataFrame(
            {
                "cluster": _strings(np.array([cluster], dtype=object), np.zeros(len(order), dtype="intp")),
                "job_id": id_job[order],
                "submit": _utc_seconds(submit[order]),
                "user": _strings(np.array(user_names, dtype=object), assoc_codes),
                "state": _strings(np.array(state_names, dtype=object), state_codes),
                "end": _utc_seconds(time_end[order]),
                "elapsed": np.maximum(run_seconds[order], 0),
                "total_cpu": _cpu_seconds(inx, steps)[order],
                **per_text,
            },
            columns=list(COLUMNS),
        )


# --- slurmrestd ------------------------------------------------------------------------------
def _number(value: Any) -> Any:
    """v0.0.39+ wraps numbers as ``{set, infinite, number}``; v0.0.38 has plain numbers."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite"):
            return None
        return value.get("number")
    return value


def _seconds(value: Any) -> float:
    """A CPU time ``{seconds, microseconds}`` (or a bare number) in seconds."""
    if isinstance(value, dict) and "seconds" in value:
        return float(_number(value.get("seconds")) or 0) + float(_number(value.get("microseconds")) or 0) / 1e6
    return float(_number(value) or 0)


def _rest_tres(entries: Iterable[Mapping[str, Any]] | None) -> str:
    named: dict[str, int] = {}
    for entry in entries or ():
        count = _number(entry.get("count"))
        if count is None or entry.get("type") == "energy":
            continue
        name = f"{entry['type']}/{entry['name']}" if entry.get("name") else str(entry.get("type", ""))
        named[name] = int(count)
    return format_named_tres(named)


def _rest_state(state: Any) -> str:
    current = state.get("current") if isinstance(state, dict) else state
    if isinstance(current, list):  # v0.0.40+: ["COMPLETED"] or ["CANCELLED", "..."]
        current = current[0] if current else ""
    return str(current or "").split()[0] if current else ""


def rest_job_row(job: Mapping[str, Any], cluster: str) -> dict[str, Any] | None:
    """A slurmdb job object (v0.0.38 and later) as a row of the frame; None for jobs that never ended."""
    times = job.get("time") or {}
    end = _number(times.get("end"))
    if not end:
        return None
    association = job.get("association") or {}
    tres = job.get("tres") or {}
    # Job-level time.total is 0 in v0.0.38: TotalCPU is the sum over the steps.
    total_cpu = sum(_seconds((step.get("time") or {}).get("total")) for step in job.get("steps") or ())
    submit = _number(times.get("submission"))
    return {
        "cluster": job.get("cluster") or association.get("cluster") or cluster,
        "job_id": int(_number(job.get("job_id")) or 0),
        "submit": datetime.fromtimestamp(int(submit or 0), tz=UTC),
        "user": job.get("user") or association.get("user") or "",
        "account": job.get("account") or association.get("account") or "",
        "partition": job.get("partition") or "",
        "state": _rest_state(job.get("state")),
        "end": datetime.fromtimestamp(int(end), tz=UTC),
        "elapsed": int(_number(times.get("elapsed")) or 0),
        "total_cpu": total_cpu,
        "req_tres": _rest_tres(tres.get("requested")),
        "alloc_tres": _rest_tres(tres.get("allocated")),
    }


class SlurmrestdSource:
    """``GET /slurmdb/<version>/jobs`` with ``X-SLURM-USER-NAME``/``X-SLURM-USER-TOKEN``.

    slurmdb's ``/jobs`` has no user filter (an unknown field is a 500), so users are filtered
    here. Times go as ``YYYY-MM-DDTHH:MM:SS`` through ``params=`` (an unencoded ``:`` is a 400).
    A bad or expired token is a 500 as well: mapped to :class:`JobSourceAuthError`.
    """

    name = "slurmrestd"

    def __init__(
        self,
        url: str | None = None,
        *,
        user: str | None = None,
        token: str | None = None,
        jwt_key: str | None = None,
        version: str | None = None,
        timeout: float | None = None,
        verify: bool | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.url = (url if url is not None else settings.BILLING_SLURMRESTD_URL).rstrip("/")
        self.user = user if user is not None else settings.BILLING_SLURMRESTD_USER
        self.token = token if token is not None else settings.BILLING_SLURMRESTD_TOKEN
        self.jwt_key = jwt_key if jwt_key is not None else settings.BILLING_SLURMRESTD_JWT_KEY
        self.version = version or settings.BILLING_SLURMRESTD_VERSION
        self.timeout = timeout if timeout is not None else settings.BILLING_SLURMRESTD_TIMEOUT
        self.verify = verify if verify is not None else settings.BILLING_SLURMRESTD_VERIFY_TLS
        self.session = session or requests.Session()

    def headers(self) -> dict[str, str]:
        if not self.user:
            raise JobSourceNotConfigured("BILLING_SLURMRESTD_USER is not set")
        return {"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": self._token()}

    def _token(self) -> str:
        if self.token:
            return self.token
        if not self.jwt_key:
            raise JobSourceNotConfigured("neither BILLING_SLURMRESTD_TOKEN nor BILLING_SLURMRESTD_JWT_KEY is set")
        import jwt  # PyJWT: the token `scontrol token` would print, signed with the cluster's HS256 key

        try:
            key = Path(self.jwt_key).read_bytes()
        except OSError as exc:
            raise JobSourceNotConfigured(f"cannot read BILLING_SLURMRESTD_JWT_KEY: {exc}") from exc
        now = int(time.time())
        return jwt.encode({"iat": now, "exp": now + 300, "sun": self.user}, key, algorithm="HS256")

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        if not self.url:
            raise JobSourceNotConfigured("BILLING_SLURMRESTD_URL is not set")
        params = {
            "start_time": query.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "end_time": query.end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "cluster": query.cluster,
        }
        if query.account:
            params["account"] = query.account
        try:
            response = self.session.get(
                f"{self.url}/slurmdb/{self.version}/jobs",
                params=params,
                headers=self.headers(),
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as exc:
            raise JobSourceError(f"slurmrestd: {exc}") from exc
        body = self._json(response)
        rows = [row for job in body.get("jobs") or () if (row := rest_job_row(job, query.cluster)) is not None]
        if not rows:
            return empty_frame()
        frame = pd.DataFrame.from_records(rows)
        return finish_frame(apply_tres(cut_off(finish_frame(frame), query), _sacct_tres))

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        text = response.text[:2000]
        if response.status_code == 401:
            raise JobSourceAuthError(f"slurmrestd refused the credentials: {text[:300]}")
        try:
            body: dict[str, Any] = dict(response.json())
        except ValueError:
            body = {}
        errors = [e for e in body.get("errors") or () if e.get("error_number") or e.get("error")]
        if any(_is_auth_error(e) for e in errors):
            # slurmdb answers a bad token with error 1007 "Protocol authentication error" (HTTP 200 or 500).
            raise JobSourceAuthError(f"slurmrestd refused the token: {errors}")
        if response.status_code == 500 and "jobs" in body:
            # 22.05 gives up half-way through a dump (e.g. a job that ran under a since-deleted QOS:
            # "_parser_dump: failed on field qos") and answers 500 with a partial list: not an auth error.
            raise JobSourceBadResponse("slurmrestd: HTTP 500 with a partial job list (a record it cannot serialise)")
        if response.status_code == 500 and not re.search(r"Unknown Query field|Unable to parse", text):
            # slurmrestd 22.05 answers a bad, expired or mismatched token with a 500, not a 401.
            raise JobSourceAuthError(f"slurmrestd: HTTP 500 (a bad or expired token?): {text[:300]}")
        if response.status_code >= 400:
            raise JobSourceBadResponse(f"slurmrestd: HTTP {response.status_code}: {text[:300]}")
        if not body:
            raise JobSourceBadResponse(f"slurmrestd: not JSON: {text[:300]}")
        if errors:
            raise JobSourceBadResponse(f"slurmrestd: {errors}")
        return body


def _is_auth_error(error: Mapping[str, Any]) -> bool:
    return error.get("error_number") == 1007 or "authentication" in str(error.get("error", "")).lower()


# --- sacct -----------------------------------------------------------------------------------
SACCT_FIELDS = [
    "JobIDRaw",
    "JobID",
    "Cluster",
    "User",
    "Account",
    "Partition",
    "Submit",
    "End",
    "ElapsedRaw",
    "TotalCPU",
    "ReqTRES",
    "AllocTRES",
    "State",
]


def sacct_frame(rows: Sequence[Mapping[str, str]], cluster: str) -> pd.DataFrame:
    """sacct (or CSV) rows, job lines only (their TotalCPU already sums the steps), as a raw frame."""
    records = []
    for row in rows:
        job_id = row.get("JobIDRaw") or row.get("JobID") or ""
        if "." in job_id or "." in (row.get("JobID") or ""):
            continue  # a step line
        end = parse_timestamp(row.get("End", ""))
        if end is None:
            continue
        elapsed_raw = row.get("ElapsedRaw")
        records.append(
            {
                "cluster": row.get("Cluster") or cluster,
                "job_id": int(job_id.split("_")[0].split("+")[0]),
                "submit": parse_timestamp(row.get("Submit", "")),
                "user": row.get("User", ""),
                "account": row.get("Account", ""),
                "partition": row.get("Partition", ""),
                "state": parse_state(row.get("State") or "UNKNOWN").name,
                "end": end,
                "elapsed": int(elapsed_raw) if elapsed_raw else parse_elapsed(row.get("Elapsed") or "00:00:00"),
                "total_cpu": parse_total_cpu(row.get("TotalCPU") or "00:00:00"),
                "req_tres": row.get("ReqTRES", ""),
                "alloc_tres": row.get("AllocTRES", ""),
            }
        )
    if not records:
        return empty_frame()
    return finish_frame(pd.DataFrame.from_records(records))


class SacctSource:
    """``sacct --parsable2`` (job and step lines; ``-X`` would zero TotalCPU) run as an argv list."""

    name = "sacct"

    def __init__(self, binary: str | None = None, *, timeout: float | None = None) -> None:
        self.binary = binary if binary is not None else settings.BILLING_SACCT
        self.timeout = timeout if timeout is not None else settings.BILLING_SACCT_TIMEOUT

    def argv(self, query: JobQuery) -> list[str]:
        argv = [
            self.binary,
            "--parsable2",
            "--noheader",
            "--duplicates",  # every record of a requeued job: each is billed on its own
            f"--clusters={query.cluster}",
            f"--starttime={query.start.astimezone(UTC):%Y-%m-%dT%H:%M:%S}",
            f"--endtime={query.end.astimezone(UTC):%Y-%m-%dT%H:%M:%S}",
            f"--format={','.join(SACCT_FIELDS)}",
        ]
        argv.append(f"--user={query.user}" if query.user else "--allusers")
        if query.account:
            argv.append(f"--accounts={query.account}")
        return argv

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        if not self.binary:
            raise JobSourceNotConfigured("BILLING_SACCT is empty")
        env = {**os.environ, "TZ": "UTC"}  # sacct prints zone-less local times
        try:
            result = subprocess.run(  # noqa: S603 - an argv list, never a shell
                self.argv(query), capture_output=True, text=True, timeout=self.timeout, check=False, env=env
            )
        except FileNotFoundError as exc:
            raise JobSourceNotConfigured(f"sacct not found: {self.binary}") from exc
        except subprocess.TimeoutExpired as exc:
            raise JobSourceError(f"sacct took more than {self.timeout} s") from exc
        if result.returncode != 0:
            raise JobSourceError(f"sacct exited with {result.returncode}: {result.stderr.strip()[:300]}")
        try:
            rows = parse_parsable2(result.stdout, fields=SACCT_FIELDS)
            frame = sacct_frame(rows, query.cluster)
        except ValueError as exc:
            raise JobSourceBadResponse(f"sacct printed something unreadable: {exc}") from exc
        return finish_frame(apply_tres(cut_off(frame, query), _sacct_tres))


# --- CSV -------------------------------------------------------------------------------------
class CsvSource:
    """A CSV file with sacct's column names (the seed's ``test.csv`` fallback)."""

    name = "csv"

    def __init__(self, path: str | None = None) -> None:
        self.path = path if path is not None else settings.BILLING_CSV_FILE

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        if not self.path:
            raise JobSourceNotConfigured("BILLING_CSV_FILE is not set")
        try:
            raw = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError) as exc:
            raise JobSourceError(f"cannot read {self.path}: {exc}") from exc
        try:
            frame = sacct_frame(raw.to_dict("records"), query.cluster)
        except (ValueError, KeyError) as exc:
            raise JobSourceBadResponse(f"{self.path}: {exc}") from exc
        frame = frame[frame["cluster"] == query.cluster]
        return finish_frame(apply_tres(cut_off(frame, query), _sacct_tres))


# --- the cascade -----------------------------------------------------------------------------
BACKENDS: dict[str, Callable[[], JobSource]] = {
    "database": DatabaseSource,
    "slurmrestd": SlurmrestdSource,
    "sacct": SacctSource,
    "csv": CsvSource,
}


def configured_sources(order: Sequence[str] | None = None) -> list[JobSource]:
    names = list(order if order is not None else settings.BILLING_SOURCES)
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise ValueError(f"Unknown job sources {unknown}; known: {', '.join(BACKENDS)}.")
    return [BACKENDS[name]() for name in names]


def fetch_jobs(query: JobQuery, sources: Sequence[JobSource] | None = None) -> FetchResult:
    """The first backend that answers, in order; JobSourceError when none does.

    An empty answer is an answer (a user with no jobs), so only errors move to the next backend.
    """
    failures: dict[str, str] = {}
    last: JobSourceError | None = None
    for source in sources if sources is not None else configured_sources():
        try:
            frame = source.fetch(query)
        except JobSourceNotConfigured as exc:
            failures[source.name] = str(exc)
            continue
        except JobSourceError as exc:
            logger.warning("job source %s failed: %s", source.name, exc)
            failures[source.name] = str(exc)
            last = exc
            continue
        return FetchResult(frame, source.name, failures)
    raise last or JobSourceError("no job source is configured: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
