"""Finished jobs with the job page's figures and advice, for apps that look at many jobs at once (outreach).

jobstats owns the figures (CPU efficiency, memory peak, GPU use, the cost of the unused share)
and the advice rules; an app that needs them for every job of a period imports no feature app:
jobstats registers its reviewer at start-up (``JobstatsConfig.ready()`` calls
:func:`register_reviewer`) and the app calls :func:`review_jobs`. The reviewed jobs carry plain
data (numbers and already translated sentences), so the caller never recomputes a figure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReviewQuery:
    cluster: str
    start: int  # jobs that ended in [start, end) (epoch seconds)
    end: int
    users: Collection[str] | None = None  # None: every user
    limit: int = 20_000  # at most this many jobs, the most recently ended
    # GPU use is asked from Prometheus (one query a job, the job page's) only for GPU jobs that ran this long
    measure_gpus_after: float = 3600.0
    max_measured: int = 2000  # at most this many such queries (the most recently ended jobs first)


@dataclass(frozen=True)
class Figure:
    kind: str  # cpu, memory, gpu, time
    percent: int  # used / requested
    used: str
    requested: str
    verdict: str  # good, fair, poor, warning
    sentence: str


@dataclass(frozen=True)
class Advice:
    rule: str
    severity: str  # info, warning, critical
    message: str
    doc_url: str = ""


@dataclass(frozen=True)
class ReviewedJob:
    cluster: str
    job_db_inx: int
    id_job: int
    display_id: str
    user: str
    account: str
    partition: str
    state: str  # COMPLETED, TIMEOUT, OUT_OF_MEMORY...
    end: int  # epoch seconds
    elapsed_seconds: float
    timelimit_minutes: int
    cores: int
    gpus: int
    memory_mb: int
    cpu_fraction: float | None = None  # None: not known (never 0 for unknown)
    memory_fraction: float | None = None
    gpu_fraction: float | None = None
    figures: tuple[Figure, ...] = ()
    waste_core_hours: float = 0.0
    waste_gpu_hours: float = 0.0
    waste_memory_gib_hours: float = 0.0
    unused_cost: float | None = None  # the hardware cost of the unused share
    currency: str = ""
    advice: tuple[Advice, ...] = ()
    notes: tuple[str, ...] = ()
    path: str = ""  # the job page

    @property
    def core_hours(self) -> float:
        return self.cores * self.elapsed_seconds / 3600

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.elapsed_seconds / 3600


@dataclass(frozen=True)
class Review:
    jobs: list[ReviewedJob]
    truncated: bool = False  # more jobs ended in the period than the limit
    notices: tuple[str, ...] = field(default=())  # a source down (Prometheus: GPU figures unknown)


Reviewer = Callable[[ReviewQuery], Review]
_reviewer: list[Reviewer] = []


def register_reviewer(reviewer: Reviewer) -> None:
    _reviewer[:] = [reviewer]


def review_jobs(query: ReviewQuery) -> Review:
    """The jobs that ended in the period, with their figures; raises LookupError without a reviewer."""
    if not _reviewer:
        raise LookupError("no job reviewer is registered (jobstats is not installed)")
    return _reviewer[0](query)
