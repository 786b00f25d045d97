"""A finished job's figures and advice as its page shows them, for many jobs at once.

The user summary's last jobs and the efficiency outreach (through userportal.jobreview) both call
:func:`assess`: the job page's combination of accounting (TotalCPU and MaxRSS of the steps, as
sacct and seff) and the exporter's figures (cached by the job page, or measured here for GPU
jobs), its summary (jobstats.domain.efficiency.summarise: the verdicts and the cost of the
unused share) and its advice rules (from the record and its steps: the job script is not read).
Queries are per batch of jobs, never per job; Prometheus is asked only for the GPU jobs named.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError
from django.urls import reverse

from jobstats.domain import advice as advice_rules
from jobstats.domain.cost import Prices
from jobstats.domain.efficiency import Efficiency, JobUsage, accounting_usage, combined_usage, summarise
from jobstats.domain.submitline import dependencies_of, parse_submit_line
from jobstats.jobpage import job_facts, resources_of
from jobstats.jobusage import measure, usage_cache_key
from jobstats.services import JobSummary, epoch_now, job_summary
from slurm.decoders import TresCatalog, parse_tres
from slurm.models import Qos, Tres, cluster_models
from slurm.visibility import jobs_of_user_by_uid
from userportal import jobreview
from userportal.errors import PrometheusUnavailable, SlurmDatabaseUnavailable
from userportal.prometheus import MetricsSession

logger = logging.getLogger(__name__)

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
CHUNK = 1000  # ids per IN list


@dataclass(frozen=True)
class Assessment:
    summary: JobSummary
    usage: JobUsage | None
    efficiency: Efficiency | None
    findings: list[advice_rules.Finding]


def steps_of(cluster: str, jobs: Sequence[Any]) -> dict[int, list[Any]]:
    """The jobs' steps (the columns TotalCPU and MaxRSS need), by job_db_inx; one query per CHUNK jobs."""
    steps: dict[int, list[Any]] = {}
    model = cluster_models(cluster).step
    ids = [j.job_db_inx for j in jobs]
    for low in range(0, len(ids), CHUNK):
        for step in model.objects.filter(job_db_inx__in=ids[low : low + CHUNK]).only(*STEP_COLUMNS):
            steps.setdefault(step.job_db_inx, []).append(step)
    return steps


def qos_names_of(jobs: Iterable[Any]) -> dict[int, str]:
    ids = sorted({j.id_qos for j in jobs if j.id_qos})
    return dict(Qos.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


def cached_usage(cluster: str, jobs: Sequence[Any]) -> dict[int, JobUsage]:
    """The figures job pages measured in Prometheus and cached (jobstats.jobusage.measure), by job_db_inx."""
    keys = {usage_cache_key(cluster, j.job_db_inx): j.job_db_inx for j in jobs}
    return {keys[key]: usage for key, usage in cache.get_many(list(keys)).items()}


def assess(
    job: Any,
    *,
    steps: list[Any],
    measured: JobUsage | None,
    catalog: TresCatalog,
    qos: str,
    prices: Prices,
    now: int,
) -> Assessment:
    """A finished job's figures, efficiency summary and advice findings, as its page computes them."""
    elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
    usage = combined_usage(accounting_usage(steps, elapsed), measured, finished=True)
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
        qos=qos,
        events=0,
        now=now,
    )
    return Assessment(summary, usage, efficiency, advice_rules.evaluate(facts))


def _finished_jobs(query: jobreview.ReviewQuery) -> list[Any]:
    base = cluster_models(query.cluster).job.objects.filter(deleted=0, time_start__gt=0)
    window = {"time_end__gte": query.start, "time_end__lt": query.end}
    if query.users is None:
        return list(base.filter(**window).order_by("-time_end", "-job_db_inx")[: query.limit + 1])
    jobs: list[Any] = []
    for user in sorted(set(query.users)):
        jobs += jobs_of_user_by_uid(user, query.cluster).filter(**window).order_by("-time_end")[: query.limit + 1]
    return sorted(jobs, key=lambda j: (-j.time_end, -j.job_db_inx))[: query.limit + 1]


def _usernames(cluster: str, jobs: Sequence[Any]) -> dict[int, str]:
    assoc = cluster_models(cluster).assoc
    ids = sorted({j.id_assoc for j in jobs})
    names: dict[int, str] = {}
    for low in range(0, len(ids), CHUNK):
        names.update(assoc.objects.filter(id_assoc__in=ids[low : low + CHUNK]).values_list("id_assoc", "user"))
    return names


def review(query: jobreview.ReviewQuery, session: MetricsSession | None = None) -> jobreview.Review:
    """The jobs that ended in the period (the most recent ``limit``), with the job page's figures and advice."""
    now = epoch_now()
    try:
        jobs = _finished_jobs(query)
        truncated = len(jobs) > query.limit
        jobs = jobs[: query.limit]
        users = _usernames(query.cluster, jobs)
        steps = steps_of(query.cluster, jobs)
        qos = qos_names_of(jobs)
        catalog = Tres.catalog()
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    measured = cached_usage(query.cluster, jobs)
    notices: list[str] = []
    session = session or MetricsSession()
    asked = 0
    for job in jobs:  # GPU use is only known to the exporter: ask it for the long GPU jobs
        if job.job_db_inx in measured or notices or asked >= query.max_measured:
            continue
        tres = parse_tres(job.tres_alloc)
        if catalog.gpu_count(tres) and job.elapsed_seconds() >= query.measure_gpus_after:
            asked += 1
            try:
                found = measure(session, job, now=now)
            except PrometheusUnavailable as exc:
                notices.append(str(exc.user_message))  # the other GPU jobs stay unmeasured too
                continue
            if found is not None:
                measured[job.job_db_inx] = found
    prices = Prices.from_settings()
    reviewed = []
    for job in jobs:
        user = users.get(job.id_assoc, "") or ""
        assessed = assess(
            job,
            steps=steps.get(job.job_db_inx, []),
            measured=measured.get(job.job_db_inx),
            catalog=catalog,
            qos=qos.get(job.id_qos, ""),
            prices=prices,
            now=now,
        )
        reviewed.append(_reviewed(query.cluster, job, user, assessed))
    return jobreview.Review(reviewed, truncated, tuple(notices))


def _reviewed(cluster: str, job: Any, user: str, found: Assessment) -> jobreview.ReviewedJob:
    efficiency = found.efficiency

    def fraction(kind: str) -> float | None:
        measure_ = efficiency.get(kind) if efficiency else None
        return measure_.fraction if measure_ else None

    summary = found.summary
    path = reverse("jobstats:job", kwargs={"username": user, "job_id": job.id_job}) if user else ""
    waste = efficiency.waste if efficiency else None
    return jobreview.ReviewedJob(
        cluster=cluster,
        job_db_inx=job.job_db_inx,
        id_job=job.id_job,
        display_id=summary.display_id,
        user=user,
        account=summary.account,
        partition=summary.partition,
        state=summary.state.name,
        end=int(job.time_end),
        elapsed_seconds=float(job.elapsed_seconds()),
        timelimit_minutes=int(job.timelimit_minutes or 0),
        cores=summary.cpus,
        gpus=summary.gpus,
        memory_mb=int(summary.memory_mb or 0),
        cpu_fraction=fraction("cpu"),
        memory_fraction=fraction("memory"),
        gpu_fraction=fraction("gpu"),
        figures=tuple(
            jobreview.Figure(m.kind, m.percent, m.used, m.requested, m.verdict, m.sentence)
            for m in (efficiency.measures if efficiency else ())
        ),
        waste_core_hours=waste.core_hours if waste else 0.0,
        waste_gpu_hours=waste.gpu_hours if waste else 0.0,
        waste_memory_gib_hours=waste.memory_gib_hours if waste else 0.0,
        unused_cost=waste.cost if waste else None,
        currency=efficiency.currency if efficiency else "",
        advice=tuple(
            jobreview.Advice(f.rule, f.severity.label, f.message, f.doc_url) for f in found.findings if f.line is None
        ),
        notes=tuple(efficiency.notes) if efficiency else (),
        path=path,
    )
