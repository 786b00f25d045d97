"""A job's usage: Slurm's accounting (TotalCPU, MaxRSS) and slurm-job-exporter's series (one query).

A finished job's CPU time and memory peak are accounting's, as sacct and seff report them; a
running job's come from its counters (jobstats.domain.efficiency.combined_usage).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from jobstats.domain.efficiency import (
    JobUsage,
    accounting_usage,
    combined_usage,
    usage_from_answer,
    usage_query,
    usage_span,
)
from userportal.errors import PrometheusUnavailable
from userportal.prometheus import MetricsSession
from userportal.promql import by_tag

HOUR = 3600


def prometheus_usage(session: MetricsSession, job_id: int, start: float, end: float) -> JobUsage | None:
    """Usage over [start, end] from slurm-job-exporter, in one query; None when it has no series of the job."""
    span = usage_span(start, end)
    return usage_from_answer(by_tag(session.query(usage_query(job_id, span), at=end)), span, start)


def job_usage(session: MetricsSession, job: Any, steps: Iterable[Any], *, now: int) -> tuple[JobUsage | None, str]:
    """The job's figures (accounting and the exporter, combined), and a notice when Prometheus is down."""
    if not job.time_start:
        return None, ""
    end = job.time_end or now
    elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
    notice = ""
    measured: JobUsage | None = None
    if "job" in settings.JOBSTATS_METRICS:
        key = f"jobstats:usage:{job.cluster}:{job.job_db_inx}"
        cached = cache.get(key) if job.time_end else None
        if cached is not None:
            measured = cached
            notice = metrics_notice(session)  # the figures are kept, but the graphs still need Prometheus
        else:
            try:
                measured = prometheus_usage(session, job.id_job, job.time_start, end)
            except PrometheusUnavailable as exc:
                notice = str(exc.user_message)
            else:
                if measured is not None and job.time_end and now - job.time_end > 600:
                    cache.set(key, measured, 6 * HOUR)  # a finished job's series no longer change
    return combined_usage(accounting_usage(steps, elapsed), measured, finished=bool(job.time_end)), notice


def metrics_notice(session: MetricsSession) -> str:
    """ "" when Prometheus answers a trivial query, else the notice to show where graphs would be."""
    try:
        session.query("vector(1)")
    except PrometheusUnavailable as exc:
        return str(exc.user_message)
    return ""
