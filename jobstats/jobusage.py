"""A job's usage: Slurm's accounting (TotalCPU, MaxRSS) and slurm-job-exporter's series (one query).

A finished job's CPU time and memory peak are accounting's, as sacct and seff report them; a
running job's come from its counters (jobstats.domain.efficiency.combined_usage).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
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
from userportal.prometheus import MetricsSession, Sample
from userportal.promql import by_tag

HOUR = 3600


def prometheus_usage(
    session: MetricsSession, job_id: int, start: float, end: float, *, asked: Future[list[Sample]] | None = None
) -> JobUsage | None:
    """Usage over [start, end] from slurm-job-exporter, in one query (``asked``: its answer, asked early
    by usage_asked); None when it has no series of the job."""
    span = usage_span(start, end)
    answer = asked.result() if asked is not None else session.query(usage_query(job_id, span), at=end)
    return usage_from_answer(by_tag(answer), span, start)


@dataclass(frozen=True)
class UsageAsked:
    """What job_usage() needs, found or asked before the page reads its database."""

    kept: JobUsage | None  # a finished job's figures, kept (usage_cache_key)
    answer: Future[list[Sample]] | None  # else the exporter's query, asked in a thread


@contextmanager
def usage_asked(session: MetricsSession, job: Any, *, now: int) -> Iterator[UsageAsked | None]:
    """job_usage's query of ``job``, asked in a thread while the block reads the Slurm database.

    The page waits for Prometheus and for its database at once instead of one after the other;
    the answer (or the failure) is the one job_usage would get. The thread ends with the block.
    None: nothing to ask (a job not started, or no exporter).
    """
    if not job.time_start or "job" not in settings.JOBSTATS_METRICS:
        yield None
        return
    kept = cache.get(usage_cache_key(job.cluster, job.job_db_inx)) if job.time_end else None
    if kept is not None:
        yield UsageAsked(kept, None)
        return
    end = job.time_end or now
    answer = session.query_later(usage_query(job.id_job, usage_span(job.time_start, end)), at=end)
    try:
        yield UsageAsked(None, answer)
    finally:
        answer.cancel()
        wait([answer])  # a page that failed before reading the answer does not leave the query behind


def job_usage(
    session: MetricsSession, job: Any, steps: Iterable[Any], *, now: int, asked: UsageAsked | None = None
) -> tuple[JobUsage | None, str]:
    """The job's figures (accounting and the exporter, combined), and a notice when Prometheus is down.

    ``asked``: from usage_asked() (the kept figures, or the query already on its way)."""
    if not job.time_start:
        return None, ""
    elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
    notice = ""
    measured: JobUsage | None = None
    if "job" in settings.JOBSTATS_METRICS:
        if asked is not None:
            cached = asked.kept
        else:
            cached = cache.get(usage_cache_key(job.cluster, job.job_db_inx)) if job.time_end else None
        if cached is not None:
            measured = cached
            notice = metrics_notice(session)  # the figures are kept, but the graphs still need Prometheus
        else:
            try:
                measured = measure(session, job, now=now, asked=asked.answer if asked is not None else None)
            except PrometheusUnavailable as exc:
                notice = str(exc.user_message)
    return combined_usage(accounting_usage(steps, elapsed), measured, finished=bool(job.time_end)), notice


def usage_cache_key(cluster: str, job_db_inx: int) -> str:
    """Where a finished job's measured figures are kept (the job page, the user summary and outreach read them)."""
    return f"jobstats:usage:{cluster}:{job_db_inx}"


def measure(
    session: MetricsSession, job: Any, *, now: int, asked: Future[list[Sample]] | None = None
) -> JobUsage | None:
    """The exporter's figures of a started job (raises PrometheusUnavailable); a finished job's are cached."""
    measured = prometheus_usage(session, job.id_job, job.time_start, job.time_end or now, asked=asked)
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
