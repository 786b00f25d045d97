"""Budget forecasts: spend so far in an account's budget period, its burn rate, the day it runs out.

Also Open OnDemand's balance file, built from the forecasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from billing.costs import to_money
from billing.models import Budget
from billing.services import usage
from slurm.jobsource.frame import JobQuery, JobSource


@dataclass
class Forecast:
    account: str
    budget: Budget | None
    spent: Decimal
    burn_per_day: Decimal
    remaining: Decimal | None
    runs_out: date | None  # None: no budget, or no spending


def forecast(
    account: str, cluster: str, now: datetime | None = None, sources: Sequence[JobSource] | None = None
) -> Forecast:
    """Spend so far in the account's current budget period, the burn rate and when the budget runs out."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    budget = Budget.objects.filter(cluster=cluster, account=account, start__lte=today, end__gte=today).first()
    start_day = budget.start if budget else today.replace(day=1)
    start = datetime.combine(start_day, time.min, tzinfo=UTC)
    found = usage(JobQuery(start, now, cluster, account=account), sources)
    spent = to_money(found.jobs["cost_minor"].sum()) if len(found.jobs) else Decimal("0.00")
    days = max((now - start).total_seconds() / 86400, 1.0)
    burn = (spent / Decimal(repr(days))).quantize(Decimal("0.01"))
    remaining = (budget.amount - spent) if budget else None
    runs_out = None
    if budget and remaining is not None and burn > 0:
        runs_out = today + timedelta(days=max(int(remaining / burn), 0)) if remaining > 0 else today
    return Forecast(account, budget, spent, burn, remaining, runs_out)


def ood_balance(forecasts: Sequence[Forecast], now: datetime | None = None) -> dict[str, Any]:
    """Open OnDemand's balance file (``OOD_BALANCE_PATH``): remaining budget per project."""
    now = now or timezone.now()
    return {
        "version": 1,
        "timestamp": int(now.timestamp()),
        "config": {"unit": settings.BILLING_CURRENCY, "project_type": "account"},
        "balances": [{"project": f.account, "value": float(f.remaining)} for f in forecasts if f.remaining is not None],
    }
