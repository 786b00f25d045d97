"""Celery tasks of billing: the periodic re-check of the roles Slurm's AdminLevel gives (billing.roles),
and the sync of the job index (billing.job_index)."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from billing import job_index, roles


@shared_task(name="billing.sync_slurm_roles", acks_late=True)
def sync_slurm_roles() -> dict[str, str]:
    """Beat task: every portal user's billing role groups against Slurm (emptied when the setting is off)."""
    return roles.sync_all()


@shared_task(name="billing.sync_job_index", acks_late=True)
def sync_job_index() -> dict[str, dict[str, float]]:
    """Beat task: each cluster's job index brought up to date with slurmdbd (blocks read again: ``rebuilt``)."""
    reports, errors = [], []
    for cluster in job_index.clusters_to_sync():  # a cluster that fails does not stop the others
        try:
            reports.append(job_index.sync(cluster))
        except DatabaseError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]  # the run fails: the beat bookkeeping shows it (late, last error)
    return {
        r.cluster: {"blocks": r.blocks, "rebuilt": r.rebuilt, "dropped": r.dropped, "jobs": r.jobs} for r in reports
    }
