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
    elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
    notice = ""
    measured: JobUsage | None = None
    if "job" in settings.JOBSTATS_METRICS:
        cached = cache.get(usage_cache_key(job.cluster, job.job_db_inx)) if job.time_end else None
        if cached is not None:
            measured = cached
            notice = metrics_notice(session)  # the figures are kept, but the graphs still need Prometheus
        else:
            try:
                measured = measure(session, job, now=now)
            except PrometheusUnavailable as exc:
                notice = str(exc.user_message)
    return combined_usage(accounting_usage(steps, elapsed), measured, finished=bool(job.time_end)), notice


def usage_cache_key(cluster: str, job_db_inx: int) -> str:
    """Where a finished job's measured figures are kept (the job page, the user summary and outreach read them)."""
    return f"jobstats:usage:{cluster}:{job_db_inx}"


def measure(session: MetricsSession, job: Any, *, now: int) -> JobUsage | None:
    """The exporter's figures of a started job (raises PrometheusUnavailable); a finished job's are cached."""
    measured = prometheus_usage(session, job.id_job, job.time_start, job.time_end or now)
    if measured is not None and job.time_end and now - job.time_end > 600:
        cache.set(usage_cache_key(job.cluster, job.job_db_inx), measured, 6 * HOUR)  # its series no longer change
    return measured


def metrics_notice(session: MetricsSession) -> str:
    """ "" when Prometheus answers a trivial query, else the notice to show where graphs would be."""
    try:
        session.query("vector(1)")
    except PrometheusUnavailable as exc:
        return str(exc.user_message)
    return ""
