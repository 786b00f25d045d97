"""The frame every job source returns, the query it answers, and the errors it raises.

Every backend answers a :class:`JobQuery` with the same pandas DataFrame (:data:`COLUMNS`).
Rows are *finished job records* whose end lies in ``[query.start, query.end]`` (the end-time
cut-off): a job still running has no cost yet. ``(cluster, job_id, submit)`` identifies a record;
requeued jobs have several. Parsing TRES text is the slow part of a million rows, so each
backend parses each *distinct* TRES string once (``pd.factorize``) and maps the results back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from slurm.sacct import parse_tres_text
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


def text_column(values: pd.Series) -> np.ndarray:
    codes, uniques = _factorize_text(values)
    return uniques[codes]


def int_array(values: pd.Series) -> np.ndarray:
    if values.dtype.kind in "iu":
        return values.to_numpy(dtype="int64")
    return pd.to_numeric(values, errors="coerce").fillna(0).to_numpy(dtype="int64")


def utc_seconds(seconds: np.ndarray) -> pd.Series:
    return pd.Series((seconds * 1_000_000).astype("datetime64[us]")).dt.tz_localize("UTC")


def apply_tres(frame: pd.DataFrame, parse: Callable[[str], TresSummary]) -> pd.DataFrame:
    """Replace raw ``req_tres``/``alloc_tres`` with the normalised text and counts; pick the GPU type."""
    req = tres_columns(frame["req_tres"], parse, "req")
    alloc = tres_columns(frame["alloc_tres"], parse, "alloc")
    frame = frame.assign(**req, **alloc)
    # The model of the GPUs a job had; a job that never ran shows what it asked for.
    frame["gpu_type"] = np.where(frame["alloc_gpu_type"] != "", frame["alloc_gpu_type"], frame["req_gpu_type"])
    return frame.drop(columns=["alloc_gpu_type", "req_gpu_type"])


def sacct_tres(text: str) -> TresSummary:
    try:
        return summarize_named_tres(parse_tres_text(text))
    except ValueError:
        logger.warning("unreadable TRES text %r", text)
        return summarize_named_tres({})
