"""The beat task: thin, and safe to run twice (the rate limit and the run lock keep a second run from mailing again)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from outreach import services


@shared_task(name="outreach.send_reports", acks_late=True)
def send_reports() -> int:
    """Mail this period's efficiency reports; nothing unless outreach is in PORTAL_MODULES. Returns the reports sent."""
    if "outreach" not in settings.PORTAL_MODULES:
        return 0
    return sum(plan.sent for plan in services.run())
