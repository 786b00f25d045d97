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
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from jobstats.domain import advice as advice_rules
from jobstats.domain import pending as pending_domain
from jobstats.domain.cost import Prices
from jobstats.domain.efficiency import (
    GOOD,
    POOR,
    WARN,
    Efficiency,
    JobUsage,
    accounting_usage,
    combined_usage,
    summarise,
)
from jobstats.domain.submitline import dependencies_of, parse_submit_line
from jobstats.jobpage import job_facts, resources_of
from jobstats.services import DEFAULT_ORDER, LIST_COLUMNS, JobSummary, epoch_now, job_summary
from slurm.commands import SlurmCommandError, run_command
from slurm.decoders import parse_tres
from slurm.models import Qos, Tres, cluster_models
from slurm.visibility import jobs_of_user_by_uid
from userportal.errors import SlurmDatabaseUnavailable
from userportal.summary import SummaryContext, SummarySection

logger = logging.getLogger(__name__)

MAX_NOW = 20  # running or pending jobs listed
RECENT = 10  # finished jobs listed
SQUEUE_CACHE_SECONDS = 60
NOW_COLUMNS = (*LIST_COLUMNS, "state_reason_prev", "time_eligible", "priority")
STEP_COLUMNS = (
    "job_db_inx",
    "id_step",
    "step_het_comp",
    "user_sec",
    "user_usec",
    "sys_sec",
    "sys_usec",
    "tres_usage_in_max",
)
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
        steps: dict[int, list[Any]] = {}
        qos_names: dict[int, str] = {}
        if jobs:
            step_model = cluster_models(context.cluster).step
            for step in step_model.objects.filter(job_db_inx__in=[j.job_db_inx for j in jobs]).only(*STEP_COLUMNS):
                steps.setdefault(step.job_db_inx, []).append(step)
            qos_ids = sorted({j.id_qos for j in jobs if j.id_qos})
            qos_names = dict(Qos.objects.filter(id__in=qos_ids).values_list("id", "name")) if qos_ids else {}
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    # Figures a job page measured in Prometheus (jobstats.jobpage.job_usage caches a finished job's).
    measured: dict[str, JobUsage] = cache.get_many([f"jobstats:usage:{context.cluster}:{j.job_db_inx}" for j in jobs])
    prices = Prices.from_settings()
    rows = []
    for job in jobs:
        elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
        usage = combined_usage(  # as the job page combines them (jobstats.jobusage.job_usage)
            accounting_usage(steps.get(job.job_db_inx, []), elapsed),
            measured.get(f"jobstats:usage:{context.cluster}:{job.job_db_inx}"),
            finished=True,
        )
        tres = parse_tres(job.tres_alloc) or parse_tres(job.tres_req)
        resources = resources_of(tres, catalog, job)
        summary = job_summary(job, catalog, now=now)
        efficiency = None
        if usage is not None and job.time_start:
            efficiency = summarise(
                usage,
                cores=resources.cpus,
                gpus=resources.gpus,
                memory_mb=resources.memory_mb,
                elapsed=elapsed,
                timelimit_minutes=job.timelimit_minutes,
                state=summary.state.name,
                running=False,
                hardware_core_hour=prices.hardware_core_hour,
                hardware_gpu_hour=prices.hardware_gpu_hour,
                currency=prices.currency,
            )
        options = parse_submit_line(job.submit_line)
        facts = job_facts(
            job,
            resources=resources,
            options=options,
            deps=dependencies_of(options),
            dependents=[],
            script=None,
            usage=usage,
            efficiency=efficiency,
            qos=qos_names.get(job.id_qos, ""),
            events=0,
            now=now,
        )
        rows.append(RecentRow(summary, efficiency, _worst(efficiency), len(advice_rules.evaluate(facts))))
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
