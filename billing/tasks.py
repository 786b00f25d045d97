"""Celery tasks of billing: the periodic re-check of the roles Slurm's AdminLevel gives (billing.roles)."""

from __future__ import annotations

from celery import shared_task

from billing import roles


@shared_task(name="billing.sync_slurm_roles", acks_late=True)
def sync_slurm_roles() -> dict[str, str]:
    """Beat task: every portal user's billing role groups against Slurm (emptied when the setting is off)."""
    return roles.sync_all()
