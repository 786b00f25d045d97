"""quotas' section of the user summary: the user's groups against their quotas, with any alert.

Registered with userportal.summary at start-up (QuotasConfig.ready()); the same fixed number of
queries as the quotas page (one per aggregate, never one per group).
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from quotas.services import reports_for
from userportal.summary import SummaryContext, SummarySection


def build(context: SummaryContext) -> dict[str, Any]:
    reports = reports_for(context.username, context.cluster)
    return {"reports": reports, "alerts": [report for report in reports if report.alert]}


def link(context: SummaryContext) -> str:
    return reverse("quotas:user", kwargs={"username": context.username})


SECTIONS = (
    SummarySection(
        key="quotas",
        module="quotas",
        title=_("Storage against quotas"),
        source=_("the Robinhood database and the quota source"),
        template="quotas/summary.html",
        build=build,
        link=link,
        order=40,
    ),
)
