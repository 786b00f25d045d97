"""Why a pending job waits: squeue's reason when it answers, else the database's, and the limits that apply."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.utils.translation import gettext as _

from jobstats.domain import pending as pending_domain
from jobstats.domain.submitline import Dependencies
from slurm.commands import SlurmCommandError, run_command
from slurm.decoders import TresCatalog, format_timelimit, parse_tres
from slurm.models import cluster_models
from userportal.errors import SlurmDatabaseUnavailable

logger = logging.getLogger(__name__)


def _tres_text(tres_text: str, catalog: TresCatalog) -> str:
    named = catalog.named(parse_tres(tres_text))
    return ", ".join(f"{name}={count}" for name, count in sorted(named.items()))


def _job_counts(record: Any, counts: tuple[tuple[str, str], ...], sentence: str, subject: dict[str, str]) -> list[str]:
    """``sentence`` for each job-count limit of ``record`` that is set (-1 or NULL: none)."""
    found = []
    for attr, words in counts:
        value = getattr(record, attr)
        if value is not None and value >= 0:
            found.append(sentence % {**subject, "count": value, "what": words})
    return found


def qos_limits(qos: Any, catalog: TresCatalog) -> list[str]:
    """The limits a QOS sets, in words (empty parts left out)."""
    if qos is None:
        return []
    name = qos.name
    found = []
    for attr, words in (
        ("grp_tres", _("for all its users together")),
        ("max_tres_pu", _("per user")),
        ("max_tres_pa", _("per account")),
        ("max_tres_pj", _("per job")),
    ):
        text = _tres_text(getattr(qos, attr), catalog)
        if text:
            found.append(_("QOS %(qos)s allows %(tres)s %(scope)s.") % {"qos": name, "tres": text, "scope": words})
    counts = (
        ("max_jobs_per_user", _("running jobs per user")),
        ("max_jobs_pa", _("running jobs per account")),
        ("grp_jobs", _("running jobs in all")),
        ("max_submit_jobs_per_user", _("queued jobs per user")),
    )
    found += _job_counts(qos, counts, _("QOS %(qos)s allows %(count)d %(what)s."), {"qos": name})
    if qos.max_wall_duration_per_job:
        found.append(
            _("QOS %(qos)s allows jobs of at most %(limit)s.")
            % {"qos": name, "limit": format_timelimit(qos.max_wall_duration_per_job)}
        )
    return found


def association_limits(cluster: str, id_assoc: int, catalog: TresCatalog, *, max_depth: int = 8) -> list[str]:
    """Limits on the job's association and the accounts above it (a few small queries)."""
    assoc = cluster_models(cluster).assoc
    columns = (
        "id_assoc",
        "user",
        "acct",
        "parent_acct",
        "grp_tres",
        "grp_jobs",
        "max_jobs",
        "max_tres_pj",
        "max_wall_pj",
        "max_submit_jobs",
    )
    row = assoc.objects.filter(id_assoc=id_assoc).only(*columns).first()
    found: list[str] = []
    depth = 0
    while row is not None and depth < max_depth:
        who = (
            _("your association in %(account)s") % {"account": row.acct}
            if row.user
            else _("account %(account)s") % {"account": row.acct}
        )
        grp = _tres_text(row.grp_tres, catalog)
        if grp:
            found.append(_("%(who)s allows %(tres)s for all its jobs together.") % {"who": who, "tres": grp})
        per_job = _tres_text(row.max_tres_pj, catalog)
        if per_job:
            found.append(_("%(who)s allows %(tres)s per job.") % {"who": who, "tres": per_job})
        counts = (
            ("grp_jobs", _("running jobs in all")),
            ("max_jobs", _("running jobs")),
            ("max_submit_jobs", _("queued jobs")),
        )
        found += _job_counts(row, counts, _("%(who)s allows %(count)d %(what)s."), {"who": who})
        if row.max_wall_pj:
            found.append(
                _("%(who)s allows jobs of at most %(limit)s.")
                % {"who": who, "limit": format_timelimit(row.max_wall_pj)}
            )
        parent = row.acct if row.user else row.parent_acct
        if not parent or (not row.user and row.acct == "root"):
            break
        row = assoc.objects.filter(user="", acct=parent, deleted=0).only(*columns).first()
        depth += 1
    return found


def run_squeue(job_id: int, *, squeue: str, timeout: float) -> pending_domain.SqueueAnswer | None:
    """The scheduler's view of a pending job; None when squeue is missing, slow or says nothing."""
    if not squeue:
        return None
    argv = [squeue, "--start", "--noheader", "--jobs", str(int(job_id)), "--format", "%S|%r|%Q"]
    try:
        result = run_command(argv, timeout=timeout)
    except SlurmCommandError as exc:
        logger.info("squeue unavailable for job %s: %s", job_id, exc)
        return None
    return pending_domain.parse_squeue(result.stdout)


def _squeue(job_id: int) -> pending_domain.SqueueAnswer | None:
    key = f"jobstats:squeue:{job_id}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    answer = run_squeue(job_id, squeue=settings.SLURM_SQUEUE, timeout=settings.SLURM_SQUEUE_TIMEOUT)
    cache.set(key, answer or False, 60)
    return answer


def pending_info(
    job: Any, cluster: str, qos: Any, catalog: TresCatalog, deps: Dependencies, *, now: int
) -> pending_domain.PendingInfo:
    """Why the job waits (squeue when it answers, else what the database suggests) and the limits that apply."""
    answer = _squeue(job.id_job)
    source = "squeue" if answer is not None else ""
    reason = answer.reason if answer is not None else ""
    if not reason:
        if job.time_eligible and job.time_eligible > now:
            reason = "BeginTime"
        elif deps:
            reason = "Dependency"
        elif job.state_reason_prev and job.state_reason_prev in pending_domain.REASON_CODES:
            reason = pending_domain.REASON_CODES[job.state_reason_prev]
        source = source or ("accounting" if reason else "")
    limits = qos_limits(qos, catalog)
    try:
        limits += association_limits(cluster, job.id_assoc, catalog)
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    relevant = limits
    if reason.startswith("QOS"):
        relevant = [text for text in limits if text.startswith("QOS")]
    elif reason.startswith("Assoc"):
        relevant = [text for text in limits if not text.startswith("QOS")]
    return pending_domain.PendingInfo(
        reason=reason,
        sentence=pending_domain.explain_reason(reason),
        limit=" ".join(relevant),
        start_estimate=answer.start if answer is not None else None,
        priority=answer.priority if answer is not None and answer.priority is not None else (job.priority or None),
        source=source,
    )
