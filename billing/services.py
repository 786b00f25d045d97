"""Billing's core use cases: the price list, rate changes and priced usage with its billed marks.

The other use cases build on these: receipts and payments (billing.ledger, whose items
billing.receipt_items writes), budget forecasts (billing.budgets) and the CSV files and audit
listing (billing.exports). Views call them and render; nothing here reads a request except to pass
it to the audit log. Job rows come from slurm.jobsource (which backend answered is returned with
them); prices from billing.costs. A JobSourceError (a DataSourceError) goes up to the view, which
shows a notice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import connections, router, transaction
from django.db.models import CharField
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils import timezone

from billing.costs import RESOURCES, PriceList, RateRow, price, totals
from billing.job_index import IndexedSource
from billing.models import AccountTier, GpuFactor, Rate, ReceiptItem, Tier
from slurm.jobsource.cascade import FetchResult, configured_sources, fetch_jobs
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import JobQuery, JobSource
from userportal.audit import audit


# --- prices ----------------------------------------------------------------------------------
def price_list(cluster: str) -> PriceList:
    """Every rate row, the GPU factors and the account tiers of ``cluster``: three small queries."""
    rates = _rate_rows(Rate.objects.all())
    factors = dict(GpuFactor.objects.values_list("gpu_type", "factor"))
    tiers = dict(AccountTier.objects.filter(cluster=cluster).values_list("account", "tier_id"))
    return PriceList(rates, factors, tiers, settings.BILLING_DEFAULT_TIER)


def current_rates(tier: Tier, at: datetime | None = None) -> dict[str, Any]:
    """The rates of ``tier`` now (the ``GET /billing/formula?type=`` answer)."""
    at = at or timezone.now()
    prices = PriceList(_rate_rows(tier.rates.all()))
    found = prices.current(tier.slug, at)
    since = {
        resource: max(
            (r.valid_from for r in prices.rates if r.resource == resource and r.valid_from <= at), default=None
        )
        for resource in RESOURCES
    }
    return {
        "type": tier.slug,
        "name": str(tier.name),
        "currency": settings.BILLING_CURRENCY,
        "unit": "hour",
        "rates": {resource: str(found.get(resource, Decimal(0))) for resource in RESOURCES},
        "valid_from": {k: v.isoformat() if v else None for k, v in since.items()},
        "gpu_factors": {k: str(v) for k, v in GpuFactor.objects.values_list("gpu_type", "factor")},
    }


def set_rates(
    tier: Tier, new: Mapping[str, Decimal], *, request: HttpRequest | None = None, actor: str = ""
) -> list[Rate]:
    """New rate rows for ``tier`` valid from now; older jobs and receipts keep their rates. Audited."""
    now = timezone.now()
    before = {k: str(v) for k, v in PriceList(_rate_rows(tier.rates.all())).current(tier.slug, now).items()}
    actor = acting_user(request, actor)
    with transaction.atomic():
        rows = [
            Rate.objects.create(tier=tier, resource=resource, price=value, valid_from=now, created_by=actor)
            for resource, value in new.items()
            if resource in RESOURCES
        ]
        audit(
            "billing.rates.update",
            request=request,
            actor=actor or None,
            target=f"tier:{tier.slug}",
            extra={"before": before, "after": {r.resource: str(r.price) for r in rows}, "valid_from": now.isoformat()},
        )
    return rows


def acting_user(request: HttpRequest | None, actor: str, default: str = "") -> str:
    """Who does it, for the records: ``actor`` if given, else the request's user, else ``default``."""
    return actor or (request.user.get_username() if request is not None else default)


def _rate_rows(rates: Iterable[Rate]) -> list[RateRow]:
    return [RateRow(r.tier_id, r.resource, r.valid_from, r.price) for r in rates]


# --- usage -----------------------------------------------------------------------------------
@dataclass
class Usage:
    jobs: pd.DataFrame  # priced, with "billed" (receipt id or 0)
    source: str
    failures: dict[str, str]
    query: JobQuery

    @property
    def unbilled(self) -> pd.DataFrame:
        return self.jobs[self.jobs["billed"] == 0]

    @property
    def billed(self) -> pd.DataFrame:
        return self.jobs[self.jobs["billed"] != 0]

    def totals(self, which: str = "all") -> dict[str, object]:
        frame = {"all": self.jobs, "unbilled": self.unbilled, "billed": self.billed}[which]
        return totals(frame)


def window(start: date | None, end: date | None, before: date | None = None) -> tuple[datetime, datetime]:
    """A [start, end] UTC window from form dates; ``before`` ("completed before") caps the end."""
    today = timezone.now().astimezone(UTC).date()
    end_day = end or today
    if before is not None:
        end_day = min(end_day, before - timedelta(days=1))
    start_day = start or (end_day - timedelta(days=settings.BILLING_DEFAULT_DAYS))
    start_dt = datetime.combine(start_day, time.min, tzinfo=UTC)
    end_dt = datetime.combine(end_day, time.max, tzinfo=UTC).replace(microsecond=0)
    if end_dt < start_dt:
        start_dt = datetime.combine(end_day, time.min, tzinfo=UTC)
    return start_dt, end_dt


def usage(query: JobQuery, sources: Sequence[JobSource] | None = None, *, cached: bool = False) -> Usage:
    """Priced jobs of the query, each marked with the receipt that billed it (0: not billed).

    ``cached`` (the pages): the fetched jobs of this exact query are kept BILLING_USAGE_CACHE_SECONDS,
    so paging, tabs and CSV after a first visit do not read the accounting database again. Prices
    and billed marks are applied on every call (a new rate or receipt shows at once). Receipts
    never use the cache.
    """
    result = (
        _fetch_cached(query, sources)
        if cached
        else fetch_jobs(query, sources if sources is not None else job_sources())
    )
    priced = price(result.frame, price_list(query.cluster))
    return Usage(mark_billed(priced, query), result.source, result.failures, query)


def _fetch_cached(query: JobQuery, sources: Sequence[JobSource] | None) -> FetchResult:
    seconds = settings.BILLING_USAGE_CACHE_SECONDS
    if seconds <= 0 or sources is not None:
        return fetch_jobs(query, sources if sources is not None else job_sources())
    key = (
        "billing:jobs:"
        + hashlib.sha256(
            repr((query.cluster, query.user, query.account, query.start.isoformat(), query.end.isoformat())).encode()
        ).hexdigest()
    )
    found = cache.get(key)
    if isinstance(found, FetchResult):
        return found
    result = fetch_jobs(query, job_sources())
    cache.set(key, result, seconds)
    return result


def job_sources() -> list[JobSource]:
    """BILLING_SOURCES in order, the database source reading the job index (billing.job_index) when it is on."""
    sources = configured_sources()
    if settings.BILLING_JOB_INDEX:
        sources = [IndexedSource() if isinstance(s, DatabaseSource) else s for s in sources]
    return sources


def mark_billed(priced: pd.DataFrame, query: JobQuery) -> pd.DataFrame:
    """Adds ``billed`` (the receipt id) from one query on the job keys in the window.

    One indexed query (``billing_item_user_end``: cluster, user, end) read with a plain cursor and
    converted column-wise: 100,000 billed jobs in a fraction of a second, not one ORM row each.
    """
    items = ReceiptItem.objects.filter(
        cluster=query.cluster, end__gte=query.start - timedelta(days=1), end__lte=query.end + timedelta(days=1)
    )
    if query.user:
        items = items.filter(user=query.user)
    if query.account:
        items = items.filter(account=query.account)
    out = priced.copy(deep=False)
    if out.empty:
        out["billed"] = pd.Series(dtype="int64")
        return out
    connection = connections[router.db_for_read(ReceiptItem)]
    # The time as text: parsed by pandas at once (mysqlclient makes a datetime per value, slowly).
    keys = items.order_by().annotate(submit_text=Cast("submit", CharField()))
    sql, params = keys.values_list("job_id", "submit_text", "receipt_id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        out["billed"] = np.zeros(len(out), dtype="int64")
        return out
    job_ids, submits, receipts = zip(*rows, strict=True)
    billed = pd.DataFrame(
        {
            "job_id": np.array(job_ids, dtype="int64"),
            "submit": _utc_times(pd.to_datetime(pd.Series(submits, dtype=object), format="ISO8601"), connection),
            "billed": np.array(receipts, dtype="int64"),
        }
    )
    out = out.merge(billed, on=["job_id", "submit"], how="left")
    out["billed"] = out["billed"].fillna(0).astype("int64")
    return out


def _utc_times(times: pd.Series, connection: Any) -> pd.Series:
    """Times as the database returned them, as the frames' ``datetime64[us, UTC]``.

    Naive values (MySQL, SQLite) are in the connection's time zone (UTC unless DATABASES sets one).
    """
    if times.dt.tz is None:
        times = times.dt.tz_localize(connection.timezone)
    return times.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
