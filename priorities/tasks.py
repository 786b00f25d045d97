"""Celery tasks: thin, idempotent, acknowledged late; the work is in priorities.reconciler."""

from __future__ import annotations

from celery import shared_task

from priorities import reconciler
from priorities.models import PriorityRequest
from userportal.errors import DataSourceError


@shared_task(
    name="priorities.activate", acks_late=True, autoretry_for=(DataSourceError,), retry_backoff=True, max_retries=5
)
def activate(*, priority_id: int) -> bool:
    """Create the QOS and give it to the users (automatic mode), once its start has come.

    Queued when staff accept a priority whose start has passed; later starts are the beat
    reconciler's (see services._start_if_due).
    """
    priority = PriorityRequest.objects.filter(pk=priority_id).first()
    return priority is not None and reconciler.activate(priority)


@shared_task(name="priorities.reconcile", acks_late=True)
def reconcile(*, dry_run: bool = False) -> list[str]:
    """Beat task: start, expire and repair what differs between the database and Slurm."""
    return [str(change) for change in reconciler.reconcile(dry_run=dry_run)]
