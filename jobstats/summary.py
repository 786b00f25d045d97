"""jobstats' sections of the user summary: the jobs running and pending now (and why they wait), the last jobs.

Registered with userportal.summary at start-up (JobstatsConfig.ready()). Both run a fixed number of
queries whatever the number of jobs, and never ask Prometheus: a finished job's efficiency comes
from the figures its job page cached (Prometheus) when there are any, else from its steps
(accounting, as seff). Pending reasons come from one ``squeue --user`` call (cached a minute),
else from the accounting database's last reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from jobstats import review
from jobstats.domain import pending as pending_domain
from jobstats.domain.cost import Prices
from jobstats.domain.efficiency import GOOD, POOR, WARN, Efficiency
from jobstats.services import DEFAULT_ORDER, LIST_COLUMNS, JobSummary, epoch_now, job_summary
from slurm.commands import SlurmCommandError, run_command
from slurm.models import Tres
from slurm.visibility import jobs_of_user_by_uid
from userportal.errors import SlurmDatabaseUnavailable
from userportal.summary import SummaryContext, SummarySection

logger = logging.getLogger(__name__)

MAX_NOW = 20  # running or pending jobs listed
RECENT = 10  # finished jobs listed
SQUEUE_CACHE_SECONDS = 60
NOW_COLUMNS = (*LIST_COLUMNS, "state_reason_prev", "time_eligible", "priority")
VERDICT_RANK = {GOOD: 0, "fair": 1, WARN: 2, POOR: 3}


@dataclass(frozen=True)
class NowRow:
    job: JobSummary
    reason: str  # pending jobs: squeue's reason, else the database's; "" when running
    sentence: str


@dataclass(frozen=True)
class RecentRow:
    job: JobSummary
    efficiency: Efficiency | None
    verdict: str  # the worst verdict of its measures, "" without figures
    advice: int  # findings of the advice rules (from the record and its steps)

    @property
    def figures(self) -> list[Any]:
        """The CPU, memory and GPU measures (the time one has its own column)."""
        return [m for m in self.efficiency.measures if m.kind != "time"] if self.efficiency else []


def link(context: SummaryContext) -> str:
    return reverse("jobstats:user", kwargs={"username": context.username})


def squeue_reasons(username: str) -> dict[int, str]:
    """{job id: reason} of the user's pending jobs, from one squeue call (cached); {} when squeue does not answer."""
    if not settings.SLURM_SQUEUE:
        return {}
    key = f"jobstats:squeue-user:{username}"
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    argv = [settings.SLURM_SQUEUE, "--noheader", "--states=PENDING", f"--user={username}", "--format=%A|%r"]
    reasons: dict[int, str] = {}
    try:
        output = run_command(argv, timeout=settings.SLURM_SQUEUE_TIMEOUT).stdout
    except SlurmCommandError as exc:
        logger.info("squeue unavailable for %s: %s", username, exc)
    else:
        for line in output.splitlines():
            job_id, _sep, reason = line.strip().partition("|")
            if job_id.isdigit():
                reasons[int(job_id)] = reason.strip()
    cache.set(key, reasons, SQUEUE_CACHE_SECONDS)
    return reasons


def _reason(job: Any, squeue: dict[int, str], now: int) -> str:
    if job.id_job in squeue:
        return squeue[job.id_job]
    if job.time_eligible and job.time_eligible > now:
        return "BeginTime"
    return pending_domain.REASON_CODES.get(job.state_reason_prev or 0, "")


def jobs_now(context: SummaryContext) -> dict[str, Any]:
    """The user's running and pending jobs (at most MAX_NOW of each), pending ones with why they wait."""
    now = epoch_now()
    try:
        jobs = jobs_of_user_by_uid(context.username, context.cluster).filter(time_end=0).only(*NOW_COLUMNS)
        running = list(jobs.filter(time_start__gt=0).order_by("-time_start", "-job_db_inx")[: MAX_NOW + 1])
        pending = list(jobs.filter(time_start=0, state=0).order_by("time_submit", "job_db_inx")[: MAX_NOW + 1])
        catalog = Tres.catalog()
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    squeue = squeue_reasons(context.username) if pending else {}
    pending_rows = []
    for job in pending[:MAX_NOW]:
        reason = _reason(job, squeue, now)
        pending_rows.append(NowRow(job_summary(job, catalog, now=now), reason, pending_domain.explain_reason(reason)))
    return {
        "running": [NowRow(job_summary(job, catalog, now=now), "", "") for job in running[:MAX_NOW]],
        "pending": pending_rows,
        "more_running": len(running) > MAX_NOW,
        "more_pending": len(pending) > MAX_NOW,
        "reasons_from_squeue": bool(squeue),
        "max_now": MAX_NOW,
    }


def _worst(efficiency: Efficiency | None) -> str:
    if efficiency is None or not efficiency.measures:
        return ""
    return max((m.verdict for m in efficiency.measures), key=lambda v: VERDICT_RANK.get(v, 0))


def recent_jobs(context: SummaryContext) -> dict[str, Any]:
    """The user's last finished jobs with their efficiency verdict and how many advice findings they have."""
    now = epoch_now()
    try:
        jobs = list(
            jobs_of_user_by_uid(context.username, context.cluster)
            .filter(time_end__gt=0)
            .order_by(*DEFAULT_ORDER)[:RECENT]
        )
        catalog = Tres.catalog()
        steps = review.steps_of(context.cluster, jobs) if jobs else {}
        qos_names = review.qos_names_of(jobs)
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    # Figures a job page measured in Prometheus (jobstats.jobusage.measure caches a finished job's).
    measured = review.cached_usage(context.cluster, jobs)
    prices = Prices.from_settings()
    rows = []
    for job in jobs:
        found = review.assess(
            job,
            steps=steps.get(job.job_db_inx, []),
            measured=measured.get(job.job_db_inx),
            catalog=catalog,
            qos=qos_names.get(job.id_qos, ""),
            prices=prices,
            now=now,
        )
        rows.append(RecentRow(found.summary, found.efficiency, _worst(found.efficiency), len(found.findings)))
    return {"jobs": rows, "recent": RECENT}


SECTIONS = (
    SummarySection(
        key="jobs-now",
        module="jobstats",
        title=_("Jobs running and pending now"),
        source=_("the Slurm accounting database"),
        template="jobstats/summary/now.html",
        build=jobs_now,
        link=link,
        order=20,
    ),
    SummarySection(
        key="recent-jobs",
        module="jobstats",
        title=_("Last jobs"),
        source=_("the Slurm accounting database"),
        template="jobstats/summary/recent.html",
        build=recent_jobs,
        link=link,
        order=30,
    ),
)
