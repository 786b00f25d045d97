"""billing's section of the user summary: unpaid receipts and the budgets of the user's accounts.

Registered with userportal.summary at start-up (BillingConfig.ready()). Receipts cost two
queries; each budget running today (at most MAX_BUDGETS) costs one forecast, which reads the
account's jobs of the budget period through the job sources.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.budgets import forecast
from billing.models import Budget, Receipt
from slurm.visibility import accounts_of
from userportal.summary import SummaryContext, SummarySection

MAX_BUDGETS = 5
RECEIPTS_SHOWN = 5


def build(context: SummaryContext) -> dict[str, Any]:
    pending = Receipt.objects.filter(username=context.username, status=Receipt.Status.PENDING)
    owed = list(pending.values("currency").annotate(total=Sum("total"), count=Count("id")).order_by("currency"))
    receipts = list(pending.order_by("-created_at", "-id")[:RECEIPTS_SHOWN])
    today = timezone.now().date()
    accounts = accounts_of(context.username, context.cluster)
    budgeted = list(
        Budget.objects.filter(cluster=context.cluster, account__in=accounts, start__lte=today, end__gte=today)
        .order_by("account")
        .values_list("account", flat=True)
        .distinct()[:MAX_BUDGETS]
    )
    return {
        "owed": owed,
        "receipts": receipts,
        "forecasts": [forecast(account, context.cluster) for account in budgeted],
    }


def link(context: SummaryContext) -> str:
    return reverse("billing:usage", kwargs={"username": context.username})


SECTIONS = (
    SummarySection(
        key="billing",
        module="billing",
        title=_("Billing"),
        source=_("the portal database and the job sources"),
        template="billing/summary.html",
        build=build,
        link=link,
        order=60,
    ),
)
