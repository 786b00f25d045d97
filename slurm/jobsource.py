"""One interface to finished jobs, with four backends tried in a configured order.

Every backend answers a :class:`JobQuery` with the same pandas DataFrame (:data:`COLUMNS`), so
billing and efficiency code never knows where the rows came from:

* ``database``: the Slurm accounting database through the read-only models (two queries:
  jobs, and their steps' CPU time summed per job, as sacct's TotalCPU is);
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
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import requests
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import BigIntegerField, Case, F, Max, Min, Sum, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, Concat

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
    parsed = [parse(str(text)) for text in uniques]
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
#: Rows read from the database per fetchmany(): bounds the Python objects alive at once.
DB_CHUNK_ROWS = 100_000
# The job query's columns: ints, the run time computed in SQL, and the four texts of a job in one
# string (one Python string and one hash per row instead of four; they have few distinct values).
JOB_FIELDS = ("job_db_inx", "id_job", "time_submit", "id_assoc", "state", "time_end", "run_seconds", "texts")
TEXT_FIELDS = ("account", "partition", "tres_req", "tres_alloc")
TEXT_SEPARATOR = "\t"
#: Selected jobs per job id in their id range from which steps are read by id range, not by a join.
STEP_RANGE_DENSITY = 0.25


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


def _job_values(jobs: Any) -> Any:
    big = BigIntegerField()
    run_seconds = Case(
        When(
            time_start__gt=0,
            then=Cast("time_end", big) - Cast("time_start", big) - Cast("time_suspended", big),
        ),
        default=Value(0),
        output_field=big,
    )
    parts: list[Any] = []
    for name in TEXT_FIELDS:
        parts += [Coalesce(name, Value(""), output_field=TextField()), Value(TEXT_SEPARATOR)]
    texts = Concat(*parts[:-1], output_field=TextField())
    return jobs.annotate(run_seconds=run_seconds, texts=texts).values_list(*JOB_FIELDS)


class DatabaseSource:
    """The Slurm accounting database through the read-only models: one query for jobs, one for steps.

    Built for a million rows (bench/billing/): the job query selects only the columns the frame
    needs and is streamed with a server-side cursor on MariaDB/MySQL (``SSCursor``: the server
    scans while this process converts, and no second copy of the result is buffered) into
    column arrays chunk by chunk; the window is a ``time_end`` range, which the job table's
    ``rollup2 (time_end, time_eligible)`` index serves when the window is selective (a window
    holding half the table is read by a scan, which the optimiser prefers). The steps' CPU time
    is summed per job in SQL over a join with the *selected* jobs only, and users come from one
    query on the associations of those jobs.
    """

    name = "database"

    def __init__(self, using: str = SLURM_DB_ALIAS) -> None:
        self.using = using

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
        jobs = (
            jobs.using(self.using)
            .filter(time_end__gte=int(query.start.timestamp()), time_end__lte=int(query.end.timestamp()))
            .order_by()
        )
        selected = jobs
        if not (query.user or query.account):
            # The whole cluster: bound the primary key by the window first (an index-only range of
            # rollup2), so the server reads the window's part of the table, not all of it.
            window = models.job.objects.using(self.using).filter(
                time_end__gte=int(query.start.timestamp()), time_end__lte=int(query.end.timestamp())
            )  # only indexed columns (no ``deleted``): rollup2 answers alone; a superset bounds as well
            bounds = window.order_by().aggregate(low=Min("job_db_inx"), high=Max("job_db_inx"))
            if bounds["low"] is None:
                return empty_frame()
            selected = jobs.filter(job_db_inx__gte=bounds["low"], job_db_inx__lte=bounds["high"])
        jobs_frame = self._frame(_job_values(selected), list(JOB_FIELDS))
        if jobs_frame.empty:
            return empty_frame()
        steps_frame = self._frame_sql(*self._steps_sql(jobs, jobs_frame, models), ["job_db_inx", "sec", "usec"])
        assoc_ids = [int(a) for a in pd.unique(jobs_frame["id_assoc"])]
        users = dict(
            models.assoc.objects.using(self.using).filter(id_assoc__in=assoc_ids).values_list("id_assoc", "user")
        )
        catalog = Tres.catalog(using=self.using)
        return self._build(jobs_frame, steps_frame, users, catalog, query.cluster)

    def _steps_sql(self, jobs: Any, jobs_frame: pd.DataFrame, models: Any) -> tuple[str, tuple[Any, ...]]:
        """CPU seconds per selected job, summed in SQL over the selected jobs' steps only.

        Job ids (``job_db_inx``) grow with submission, so a time window selects a dense id range:
        then one primary-key range scan of the steps (the few steps of unselected jobs inside it
        are dropped when the sums are matched to the jobs). A sparse selection (one user over a
        long window) joins the job query instead, driven from the selected jobs.
        """
        inx = _ints(jobs_frame["job_db_inx"])
        low, high = int(inx.min()), int(inx.max())
        steps = models.step.objects.using(self.using)
        if len(inx) >= STEP_RANGE_DENSITY * (high - low + 1):
            grouped = (
                steps.filter(job_db_inx__gte=low, job_db_inx__lte=high)
                .values("job_db_inx")
                .annotate(sec=Sum(F("user_sec") + F("sys_sec")), usec=Sum(F("user_usec") + F("sys_usec")))
                .order_by()
                .values_list("job_db_inx", "sec", "usec")
            )
            sql, params = grouped.query.get_compiler(using=self.using).as_sql()
            return sql, tuple(params)
        connection = connections[self.using]
        qn = connection.ops.quote_name
        inner, params = jobs.values_list("job_db_inx").query.get_compiler(using=self.using).as_sql()
        step = qn(models.step._meta.db_table)
        sql = (
            f"SELECT s.{qn('job_db_inx')}, SUM(s.{qn('user_sec')} + s.{qn('sys_sec')}),"  # noqa: S608 - names quoted
            f" SUM(s.{qn('user_usec')} + s.{qn('sys_usec')})"
            f" FROM {step} s INNER JOIN ({inner}) j ON s.{qn('job_db_inx')} = j.{qn('job_db_inx')}"
            f" GROUP BY s.{qn('job_db_inx')}"
        )
        return sql, tuple(params)

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
        jobs: pd.DataFrame, steps: pd.DataFrame, users: Mapping[int, str], catalog: TresCatalog, cluster: str
    ) -> pd.DataFrame:
        """The typed, sorted frame straight from column arrays (what finish_frame makes, without its passes)."""
        time_end = _ints(jobs["time_end"])
        job_id = _ints(jobs["id_job"])
        order = np.lexsort((job_id, time_end))  # rows sorted by end time then job id, as finish_frame sorts
        time_end, job_id = time_end[order], job_id[order]
        elapsed = np.maximum(_ints(jobs["run_seconds"])[order], 0)
        cpu_seconds = np.zeros(len(order))
        if len(steps):
            sums = (
                pd.Series(_floats(steps["sec"]) + _floats(steps["usec"]) / 1e6, index=_ints(steps["job_db_inx"]))
                .groupby(level=0)
                .sum()
            )
            cpu_seconds = sums.reindex(_ints(jobs["job_db_inx"])[order]).fillna(0.0).to_numpy(dtype="float64")
        state_codes, states = pd.factorize(_ints(jobs["state"])[order])
        state_names = np.array([decode_state(int(s)).name for s in states], dtype=object)
        assoc_codes, assocs = pd.factorize(_ints(jobs["id_assoc"])[order])
        user_names = np.array([users.get(int(a), "") or "" for a in assocs], dtype=object)
        codes, combos = _factorize_text(jobs["texts"])
        codes = codes[order]
        split = [[*str(c).split(TEXT_SEPARATOR), "", "", "", ""][:4] for c in combos]
        account, partition, req_text, alloc_text = (np.array(part, dtype=object) for part in zip(*split, strict=True))

        @functools.cache
        def parse(text: str) -> TresSummary:  # each distinct TRES text once
            return summarize_named_tres(catalog.named(parse_tres(text)))

        req = tres_arrays(codes, req_text, parse, "req")
        alloc = tres_arrays(codes, alloc_text, parse, "alloc")
        alloc_gpu_type, req_gpu_type = alloc.pop("alloc_gpu_type"), req.pop("req_gpu_type")
        gpu_type = np.where(alloc_gpu_type != "", alloc_gpu_type, req_gpu_type)  # a job that never ran: its request
        return pd.DataFrame(
            {
                "cluster": np.full(len(order), cluster, dtype=object),
                "job_id": job_id,
                "submit": _utc_seconds(_ints(jobs["time_submit"])[order]),
                "user": user_names[assoc_codes],
                "account": account[codes],
                "partition": partition[codes],
                "state": state_names[state_codes],
                "end": _utc_seconds(time_end),
                "elapsed": elapsed.astype("int64"),
                "total_cpu": cpu_seconds,
                **req,
                **alloc,
                "gpu_type": gpu_type,
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
