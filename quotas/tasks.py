"""Celery tasks of the quotas module: thin, named, idempotent (alerts.check_quotas upserts)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from quotas import alerts
from userportal.errors import DataSourceError


@shared_task(
    name="quotas.check_quotas",
    acks_late=True,
    autoretry_for=(DataSourceError,),
    retry_backoff=True,
    max_retries=5,
)
def check_quotas() -> dict[str, Any]:
    result = alerts.check_quotas()
    return {
        "groups": result.groups,
        "raised": result.raised,
        "cleared": result.cleared,
        "mailed": result.mailed,
        "skipped": result.skipped,
    }
