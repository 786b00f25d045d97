"""Celery tasks: thin and idempotent; the work is in extensions.services."""

from __future__ import annotations

from celery import shared_task

from extensions import services
from extensions.models import ExtensionRequest


@shared_task(name="extensions.apply", acks_late=True)
def apply(*, extension_id: int) -> bool:
    """scontrol update JobId=<id> TimeLimit=<new>, as the Slurm operator account (queued on acceptance)."""
    extension = ExtensionRequest.objects.filter(pk=extension_id).first()
    return extension is not None and services.apply(extension)


@shared_task(name="extensions.expire", acks_late=True)
def expire() -> list[int]:
    """Beat task: open requests of jobs that ended expire."""
    return services.expire_ended()
