"""jobqueue's section of the user summary: the user's token (and when it expires) and their queued jobs.

Registered with userportal.summary at start-up (JobqueueConfig.ready()); three queries.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from jobqueue.models import Job, JobStatus, JobToken
from userportal.summary import SummaryContext, SummarySection

JOBS_SHOWN = 5


def build(context: SummaryContext) -> dict[str, Any]:
    jobs = Job.objects.filter(user__username=context.username)
    now = timezone.now()
    token = (
        JobToken.objects.filter(user__username=context.username, revoked=False)
        .only("prefix", "expires", "last_used", "is_admin", "created")
        .order_by("-created", "-id")
        .first()
    )
    return {
        "token": token,
        "token_expired": token is not None and token.expires <= now,
        "counts": [
            (JobStatus(status).label, n)
            for status, n in jobs.order_by("status").values_list("status").annotate(n=Count("id"))
        ],
        "jobs": list(
            jobs.only("job_id", "competition_id", "project_id", "status", "node", "created", "finished").order_by(
                "-created", "-id"
            )[:JOBS_SHOWN]
        ),
    }


def link(context: SummaryContext) -> str:
    return reverse("jobqueue:dashboard") if context.viewer_is_staff else reverse("jobqueue:index")


SECTIONS = (
    SummarySection(
        key="jobqueue",
        module="jobqueue",
        title=_("GPU job queue"),
        source=_("the portal database"),
        template="jobqueue/summary.html",
        build=build,
        link=link,
        order=70,
    ),
)
