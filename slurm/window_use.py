"""Use over a period per (user, account), for top and accountstats: finished jobs from accounting, running ones from their counters.

The figures are slurm.usage's (TotalCPU, as sacct adds it up) and slurm.exporter's (the core
counters' growth), so a flag or a waste column says what sacct and seff would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.db import DatabaseError

from slurm import exporter
from slurm.decoders import JobState, job_memory_mb, parse_tres
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import JobQuery
from slurm.models import Tres, cluster_models
from userportal.errors import PrometheusUnavailable, SlurmDatabaseUnavailable
from userportal.prometheus import MetricsSession, finite


@dataclass
class WindowUse:
    """Core-seconds allocated and CPU-seconds used in a period, by one user in one account."""

    user: str
    account: str
    core_seconds: float = 0.0  # allocated (cores × time in the period), every job
    cpu_seconds: float = 0.0  # used, by the jobs whose use is known
    measured_core_seconds: float = 0.0  # allocated to the jobs whose use is known
    mem_mb_seconds: float = 0.0
    gpu_seconds: float = 0.0
    jobs: int = 0

    @property
    def efficiency(self) -> float | None:
        """CPU efficiency of the jobs whose use is known (a running job without counters is left out)."""
        return self.cpu_seconds / self.measured_core_seconds if self.measured_core_seconds > 0 else None

    @property
    def unmeasured(self) -> bool:
        return self.core_seconds - self.measured_core_seconds > 1.0


@dataclass
class PeriodUse:
    rows: dict[tuple[str, str], WindowUse]
    counters_missing: bool  # running jobs' use is unknown: Prometheus did not answer


MAX_RUNNING = 20_000


def use_in_window(
    session: MetricsSession | None,
    cluster: str,
    start: float,
    end: float | None = None,
    *,
    account: str | None = None,
) -> PeriodUse:
    """Per (user, account), what jobs were allocated and used in ``[start, end]`` (end: now).

    Finished jobs come from accounting (TotalCPU), counted for the part of their run inside the
    period; running jobs from their core counters' growth inside the period. Raises
    SlurmDatabaseUnavailable (or a JobSourceError) when the accounting database does not answer.
    """
    now = time.time() if end is None else end
    low, high = math.floor(start), math.floor(now)
    frame = DatabaseSource().fetch(
        JobQuery(datetime.fromtimestamp(low, tz=UTC), datetime.fromtimestamp(high, tz=UTC), cluster, account=account)
    )
    rows: dict[tuple[str, str], WindowUse] = {}
    if len(frame):
        elapsed = frame["elapsed"].to_numpy(dtype="float64")
        ends = (frame["end"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype="float64")
        inside = np.clip(ends - np.maximum(ends - elapsed, low), 0.0, None)
        share = np.where(elapsed > 0, inside / np.where(elapsed > 0, elapsed, 1.0), 1.0)
        cores = frame["alloc_cpus"].to_numpy(dtype="float64")
        columns = zip(
            frame["user"], frame["account"], cores * inside, frame["total_cpu"].to_numpy() * share,
            frame["alloc_mem_mb"].to_numpy() * inside, frame["alloc_gpus"].to_numpy() * inside, strict=True,
        )  # fmt: skip
        for user, acct, core_s, cpu_s, mem_s, gpu_s in columns:
            row = rows.setdefault((str(user), str(acct)), WindowUse(str(user), str(acct)))
            row.core_seconds += float(core_s)
            row.measured_core_seconds += float(core_s)
            row.cpu_seconds += float(cpu_s)
            row.mem_mb_seconds += float(mem_s)
            row.gpu_seconds += float(gpu_s)
            row.jobs += 1
    missing = _add_running(rows, session, cluster, low, high, account)
    return PeriodUse(rows, missing)


def _add_running(
    rows: dict[tuple[str, str], WindowUse],
    session: MetricsSession | None,
    cluster: str,
    low: int,
    high: int,
    account: str | None,
) -> bool:
    models = cluster_models(cluster)
    try:
        jobs = models.job.objects.filter(deleted=0, state=int(JobState.RUNNING), time_start__gt=0, time_end=0)
        jobs = jobs.filter(time_start__lt=high)
        if account:
            jobs = jobs.filter(account=account)
        running = list(
            jobs.values_list("id_job", "id_assoc", "account", "time_start", "tres_alloc", "mem_req", "nodes_alloc")[
                :MAX_RUNNING
            ]
        )
        users = dict(models.assoc.objects.filter(id_assoc__in={r[1] for r in running}).values_list("id_assoc", "user"))
        catalog = Tres.catalog()
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    if not running:
        return False
    used: dict[str, float] = {}
    missing = session is None
    if session is not None:
        try:
            samples = session.query(exporter.cpu_seconds([r[0] for r in running], high - low), at=high)
        except PrometheusUnavailable:
            missing = True
        else:
            used = {s.labels.get("slurmjobid", ""): v for s in samples if (v := finite(s.value)) is not None}
    for id_job, id_assoc, acct, time_start, tres_text, mem_req, nodes in running:
        tres = parse_tres(tres_text)
        cores = tres.get(catalog.cpu or 1, 0)
        inside = max(high - max(time_start, low), 0)
        user = users.get(id_assoc, "") or ""
        row = rows.setdefault((user, acct or ""), WindowUse(user, acct or ""))
        row.core_seconds += cores * inside
        row.mem_mb_seconds += (job_memory_mb(mem_req, cpus=cores, nodes=nodes or 1, tres_alloc=tres) or 0) * inside
        row.gpu_seconds += catalog.gpu_count(tres) * inside
        row.jobs += 1
        cpu = used.get(str(id_job))
        if cpu is not None:
            row.cpu_seconds += cpu
            row.measured_core_seconds += cores * inside
    return missing
