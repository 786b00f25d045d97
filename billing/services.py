"""Billing's use cases: usage with costs, receipts, payments, rates, forecasts and exports.

Views call these and render; nothing here reads a request except to pass it to the audit log.
Job rows come from slurm.jobsource (which backend answered is returned with them); prices from
billing.costs. A JobSourceError (a DataSourceError) goes up to the view, which shows a notice.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import CharField, Count, Sum
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils import timezone

from billing.costs import RESOURCES, PriceList, RateRow, price, to_money, totals
from billing.models import AccountTier, Budget, GpuFactor, Rate, Receipt, ReceiptItem, Tier
from slurm.jobsource.cascade import FetchResult, fetch_jobs
from slurm.jobsource.frame import JobQuery, JobSource
from userportal import csvsafe
from userportal.audit import audit


class AlreadyBilled(Exception):
    """Another receipt took some of these jobs first (the job key refused a second insert)."""


class NothingToBill(Exception):
    pass


# --- prices ----------------------------------------------------------------------------------
def price_list(cluster: str) -> PriceList:
    """Every rate row, the GPU factors and the account tiers of ``cluster``: three small queries."""
    rates = [RateRow(r.tier_id, r.resource, r.valid_from, r.price) for r in Rate.objects.all()]
    factors = dict(GpuFactor.objects.values_list("gpu_type", "factor"))
    tiers = dict(AccountTier.objects.filter(cluster=cluster).values_list("account", "tier_id"))
    return PriceList(rates, factors, tiers, settings.BILLING_DEFAULT_TIER)


def current_rates(tier: Tier, at: datetime | None = None) -> dict[str, Any]:
    """The rates of ``tier`` now (the ``GET /billing/formula?type=`` answer)."""
    at = at or timezone.now()
    prices = PriceList([RateRow(r.tier_id, r.resource, r.valid_from, r.price) for r in tier.rates.all()])
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
    before = {k: str(v) for k, v in PriceList(list(_rows(tier))).current(tier.slug, now).items()}
    actor = actor or (request.user.get_username() if request is not None else "")
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


def _rows(tier: Tier) -> Iterable[RateRow]:
    return (RateRow(r.tier_id, r.resource, r.valid_from, r.price) for r in tier.rates.all())


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
    result = _fetch_cached(query, sources) if cached else fetch_jobs(query, sources)
    priced = price(result.frame, price_list(query.cluster))
    return Usage(mark_billed(priced, query), result.source, result.failures, query)


def _fetch_cached(query: JobQuery, sources: Sequence[JobSource] | None) -> FetchResult:
    seconds = settings.BILLING_USAGE_CACHE_SECONDS
    if seconds <= 0 or sources is not None:
        return fetch_jobs(query, sources)
    key = (
        "billing:jobs:"
        + hashlib.sha256(
            repr((query.cluster, query.user, query.account, query.start.isoformat(), query.end.isoformat())).encode()
        ).hexdigest()
    )
    found = cache.get(key)
    if isinstance(found, FetchResult):
        return found
    result = fetch_jobs(query, sources)
    cache.set(key, result, seconds)
    return result


def mark_billed(priced: pd.DataFrame, query: JobQuery) -> pd.DataFrame:
    """Adds ``billed`` (the receipt id) from one query on the job keys in the window.

    One indexed query (``billing_item_user_end``: cluster, user, end) read with a plain cursor and
    converted column-wise: 100,000 billed jobs in a fraction of a second, not one ORM row each.
    """
    from django.db import connections, router

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


# --- receipts --------------------------------------------------------------------------------
def create_receipt(
    username: str,
    query: JobQuery,
    *,
    request: HttpRequest | None = None,
    actor: str = "",
    sources: Sequence[JobSource] | None = None,
) -> Receipt:
    """A receipt for ``username``'s unbilled jobs in the query window. Audited.

    Already billed jobs are filtered out here; the job key's unique constraint refuses the rest of
    a race (two requests at once): the loser's transaction rolls back whole and AlreadyBilled is
    raised, so no job is ever on two receipts.
    """
    query = JobQuery(query.start, query.end, query.cluster, user=username)
    found = usage(query, sources)
    jobs = found.unbilled
    if jobs.empty:
        raise NothingToBill
    prices = price_list(query.cluster)
    actor = actor or (request.user.get_username() if request is not None else username)
    try:
        with transaction.atomic():
            receipt = Receipt.objects.create(
                username=username,
                cluster=query.cluster,
                currency=settings.BILLING_CURRENCY,
                total=to_money(jobs["cost_minor"].sum()),
                job_count=len(jobs),
                period_start=query.start,
                period_end=query.end,
                rates=prices.snapshot(),
                source=found.source,
                created_by=actor,
            )
            insert_items(receipt, jobs)
    except IntegrityError as exc:
        audit("billing.receipt.create", request=request, actor=actor, target=f"user:{username}", status="conflict")
        raise AlreadyBilled from exc
    audit(
        "billing.receipt.create",
        request=request,
        actor=actor,
        target=f"receipt:{receipt.pk}",
        extra={"user": username, "jobs": receipt.job_count, "total": str(receipt.total), "source": found.source},
    )
    return receipt


def _items(receipt: Receipt, jobs: pd.DataFrame) -> list[ReceiptItem]:
    columns = ["job_id", "submit", "user", "account", "tier", "partition", "state", "end", "elapsed", "alloc_tres"]
    columns += ["gpu_type", "cpu_hours", "gpu_hours", "mem_gb_hours", "cpu_minor", "gpu_minor", "mem_minor"]
    columns += ["cost_minor"]
    q4 = Decimal("0.0001")
    items = []
    for row in jobs[columns].itertuples(index=False):
        items.append(
            ReceiptItem(
                receipt=receipt,
                cluster=receipt.cluster,
                job_id=int(row.job_id),
                submit=row.submit.to_pydatetime(),
                user=row.user,
                account=row.account,
                tier=row.tier,
                partition=row.partition,
                state=row.state,
                end=row.end.to_pydatetime(),
                elapsed=int(row.elapsed),
                alloc_tres=row.alloc_tres,
                gpu_type=row.gpu_type,
                cpu_hours=Decimal(repr(row.cpu_hours)).quantize(q4),
                gpu_hours=Decimal(repr(row.gpu_hours)).quantize(q4),
                mem_gb_hours=Decimal(repr(row.mem_gb_hours)).quantize(q4),
                cpu_cost=to_money(row.cpu_minor),
                gpu_cost=to_money(row.gpu_minor),
                mem_cost=to_money(row.mem_minor),
                cost=to_money(row.cost_minor),
            )
        )
    return items


ITEM_BATCH = 5000
#: Bytes of one literal multi-row INSERT on MariaDB/MySQL (well under the 16 MB max_allowed_packet).
ITEM_STATEMENT_BYTES = 4_000_000
ITEM_COLUMNS = ("job_id", "submit", "user", "account", "tier", "partition", "state", "end", "elapsed", "alloc_tres")
ITEM_COLUMNS += ("gpu_type", "cpu_hours", "gpu_hours", "mem_gb_hours", "cpu_cost", "gpu_cost", "mem_cost", "cost")
_TEXT_ITEM_COLUMNS = ("user", "account", "tier", "partition", "state", "alloc_tres", "gpu_type")
_MONEY_ITEM_COLUMNS = {"cpu_cost": "cpu_minor", "gpu_cost": "gpu_minor", "mem_cost": "mem_minor", "cost": "cost_minor"}


def insert_items(receipt: Receipt, jobs: pd.DataFrame) -> int:
    """Insert the receipt's items: values built column-wise, then multi-row INSERTs.

    What ``bulk_create(_items(...))`` stores, without a model object and per-field preparation
    per row (100,000 jobs: seconds instead of most of a minute). On MariaDB/MySQL the statements
    are written here, column by column (mysqlclient's executemany quotes every value in Python,
    which was most of a 100,000-job receipt's time); elsewhere ``executemany`` with parameters.
    The caller's transaction makes the receipt all or nothing; the job key's unique constraint
    still refuses a job billed twice (IntegrityError, as with bulk_create).
    """
    from django.db import connections, router

    using = router.db_for_write(ReceiptItem)
    connection = connections[using]
    meta = ReceiptItem._meta
    columns = ["receipt_id", "cluster", *ITEM_COLUMNS]
    names = [meta.get_field("receipt").column if c == "receipt_id" else meta.get_field(c).column for c in columns]
    table = connection.ops.quote_name(meta.db_table)
    quoted_names = ", ".join(connection.ops.quote_name(c) for c in names)
    head = f"INSERT INTO {table} ({quoted_names}) VALUES "  # noqa: S608 - quoted names of the model
    if connection.vendor == "mysql" and settings.USE_TZ:
        return _insert_literal(connection, head, receipt, jobs)
    return _insert_params(connection, head, len(names), receipt, jobs)


def _insert_params(connection: Any, head: str, width: int, receipt: Receipt, jobs: pd.DataFrame) -> int:
    ops = connection.ops
    n = len(jobs)
    q4 = "{:.4f}".format

    def times(series: pd.Series) -> list[Any]:
        return [ops.adapt_datetimefield_value(v) for v in series.dt.to_pydatetime()]

    def hours(series: pd.Series) -> list[Decimal]:
        return [Decimal(q4(v)) for v in series.to_numpy(dtype="float64")]

    def money(series: pd.Series) -> list[Decimal]:
        return [Decimal(int(v)).scaleb(-2) for v in series.to_numpy(dtype="int64")]

    values = [
        [receipt.pk] * n,
        [receipt.cluster] * n,
        [int(v) for v in jobs["job_id"].to_numpy(dtype="int64")],
        times(jobs["submit"]),
        jobs["user"].tolist(),
        jobs["account"].tolist(),
        jobs["tier"].tolist(),
        jobs["partition"].tolist(),
        jobs["state"].tolist(),
        times(jobs["end"]),
        [int(v) for v in jobs["elapsed"].to_numpy(dtype="int64")],
        jobs["alloc_tres"].tolist(),
        jobs["gpu_type"].tolist(),
        hours(jobs["cpu_hours"]),
        hours(jobs["gpu_hours"]),
        hours(jobs["mem_gb_hours"]),
        money(jobs["cpu_minor"]),
        money(jobs["gpu_minor"]),
        money(jobs["mem_minor"]),
        money(jobs["cost_minor"]),
    ]
    rows = list(zip(*values, strict=True))
    sql = head + f"({', '.join(['%s'] * width)})"
    with connection.cursor() as cursor:
        for start in range(0, n, ITEM_BATCH):
            cursor.executemany(sql, rows[start : start + ITEM_BATCH])
    return n


def _insert_literal(connection: Any, head: str, receipt: Receipt, jobs: pd.DataFrame) -> int:
    """MariaDB/MySQL: the VALUES written as SQL literals, a column at a time.

    Numbers are formatted from int64/float64 arrays and times from datetime64 arrays (nothing
    there can hold a quote); every text goes through the driver's own escaping (what executemany
    does per value), once per distinct text.
    """
    n = len(jobs)
    if not n:
        return 0
    connection.ensure_connection()
    driver = connection.connection

    encoding = getattr(driver, "encoding", "utf-8")

    def quoted(values: Sequence[Any]) -> list[str]:
        return [driver.literal(str(v)).decode(encoding) for v in values]

    def texts(series: pd.Series) -> list[str]:
        codes, distinct = pd.factorize(np.asarray(series.array, dtype=object), use_na_sentinel=False)
        return np.array(quoted(["" if v is None or v != v else v for v in distinct]), dtype=object)[codes].tolist()

    def ints(series: pd.Series) -> list[str]:
        return series.to_numpy(dtype="int64").astype(str).tolist()

    def times(series: pd.Series) -> list[str]:
        naive = series.dt.tz_convert(connection.timezone).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        iso = np.strings.replace(np.datetime_as_string(naive, unit="us"), "T", " ")  # 'YYYY-MM-DD HH:MM:SS.ffffff'
        return np.strings.add(np.strings.add("'", iso), "'").tolist()

    def hours(series: pd.Series) -> list[str]:
        return [f"{v:.4f}" for v in series.to_numpy(dtype="float64").tolist()]  # what Decimal(q4(v)) stores

    def money(series: pd.Series) -> list[str]:
        return [
            str(Decimal(v).scaleb(-2)) if v < 0 else f"{v // 100}.{v % 100:02d}"
            for v in series.to_numpy(dtype="int64").tolist()
        ]

    columns: dict[str, list[str]] = {
        "receipt_id": [str(int(receipt.pk))] * n,
        "cluster": quoted([receipt.cluster]) * n,
        "job_id": ints(jobs["job_id"]),
        "submit": times(jobs["submit"]),
        "end": times(jobs["end"]),
        "elapsed": ints(jobs["elapsed"]),
        **{name: texts(jobs[name]) for name in _TEXT_ITEM_COLUMNS},
        **{name: hours(jobs[name]) for name in ("cpu_hours", "gpu_hours", "mem_gb_hours")},
        **{name: money(jobs[minor]) for name, minor in _MONEY_ITEM_COLUMNS.items()},
    }
    rows = [
        "(" + ",".join(values) + ")"
        for values in zip(*(columns[c] for c in ["receipt_id", "cluster", *ITEM_COLUMNS]), strict=True)
    ]
    with connection.cursor() as cursor:
        batch: list[str] = []
        size = 0
        for row in rows:
            batch.append(row)
            size += len(row) + 1
            if size >= ITEM_STATEMENT_BYTES:
                cursor.execute(head + ",".join(batch))
                batch, size = [], 0
        if batch:
            cursor.execute(head + ",".join(batch))
    return n


def receipts_of(username: str) -> list[Receipt]:
    return list(Receipt.objects.filter(username=username))


def mark_paid(receipt: Receipt, *, request: HttpRequest | None = None, actor: str = "") -> bool:
    """Mark a pending receipt paid (False if it already was). Audited."""
    actor = actor or (request.user.get_username() if request is not None else "")
    now = timezone.now()
    with transaction.atomic():
        updated = Receipt.objects.filter(pk=receipt.pk, status=Receipt.Status.PENDING).update(
            status=Receipt.Status.PAID, paid_at=now, paid_by=actor
        )
        if updated:
            audit(
                "billing.receipt.paid",
                request=request,
                actor=actor or None,
                target=f"receipt:{receipt.pk}",
                extra={"user": receipt.username, "total": str(receipt.total), "currency": receipt.currency},
            )
    receipt.refresh_from_db()
    return bool(updated)


def pending_receipts() -> list[Receipt]:
    return list(Receipt.objects.filter(status=Receipt.Status.PENDING).order_by("created_at"))


# --- forecasts -------------------------------------------------------------------------------
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


# --- staff charts ----------------------------------------------------------------------------
def monthly_costs(priced: pd.DataFrame, by: str) -> dict[str, Any]:
    """Cost per month per ``by`` (tier or account) for the charts: {"months": [...], "series": {name: [...]}}."""
    if priced.empty:
        return {"months": [], "series": {}}
    month = priced["end"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    table = priced.assign(month=month).pivot_table(
        index="month", columns=by, values="cost_minor", aggfunc="sum", fill_value=0
    )
    if by == "account" and table.shape[1] > 12:  # the 12 largest accounts, the rest together
        order = table.sum().sort_values(ascending=False).index
        table = pd.concat([table[order[:12]], table[order[12:]].sum(axis=1).rename("(other)")], axis=1)
    return {
        "months": list(table.index),
        "series": {str(name): [str(to_money(v)) for v in table[name]] for name in table.columns},
    }


# --- CSV -------------------------------------------------------------------------------------
USAGE_CSV_COLUMNS = [
    ("cluster", "cluster"),
    ("job_id", "job_id"),
    ("submit", "submit"),
    ("user", "user"),
    ("account", "account"),
    ("tier", "tier"),
    ("partition", "partition"),
    ("state", "state"),
    ("end", "end"),
    ("elapsed_s", "elapsed"),
    ("total_cpu_s", "total_cpu"),
    ("alloc_tres", "alloc_tres"),
    ("gpu_type", "gpu_type"),
    ("cpu_hours", "cpu_hours"),
    ("gpu_hours", "gpu_hours"),
    ("mem_gb_hours", "mem_gb_hours"),
    ("cpu_cost", "cpu_minor"),
    ("gpu_cost", "gpu_minor"),
    ("mem_cost", "mem_minor"),
    ("cost", "cost_minor"),
    ("unused_cpu_cost", "unused_minor"),
    ("receipt", "billed"),
]
RECEIPT_CSV_COLUMNS = [
    "receipt",
    "cluster",
    "job_id",
    "submit",
    "user",
    "account",
    "tier",
    "partition",
    "state",
    "end",
    "elapsed_s",
    "alloc_tres",
    "gpu_type",
    "cpu_hours",
    "gpu_hours",
    "mem_gb_hours",
    "cpu_cost",
    "gpu_cost",
    "mem_cost",
    "cost",
    "currency",
]
PAID_CSV_COLUMNS = ["receipt", "user", "cluster", "jobs", "total", "currency", "created_at", "paid_at", "paid_by"]


def usage_csv(priced: pd.DataFrame) -> str:
    """The usage table as CSV (USAGE_CSV_COLUMNS; money in major units, two decimals)."""
    out = pd.DataFrame({name: priced[source] for name, source in USAGE_CSV_COLUMNS}) if len(priced) else None
    if out is None:
        return ",".join(name for name, _ in USAGE_CSV_COLUMNS) + "\r\n"
    for name in ("cpu_cost", "gpu_cost", "mem_cost", "cost", "unused_cpu_cost"):
        out[name] = [f"{int(v) // 100}.{int(v) % 100:02d}" for v in out[name]]
    for name in ("cpu_hours", "gpu_hours", "mem_gb_hours"):
        out[name] = out[name].round(4)
    out["total_cpu_s"] = out["total_cpu_s"].round(3)
    for name in ("submit", "end"):
        out[name] = out[name].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return csvsafe.frame_csv(out, index=False, lineterminator="\r\n")


def receipt_csv(receipt: Receipt) -> str:
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(RECEIPT_CSV_COLUMNS)
    for item in receipt.items.all().iterator(chunk_size=5000):
        writer.writerow(
            [
                receipt.pk,
                item.cluster,
                item.job_id,
                _iso(item.submit),
                item.user,
                item.account,
                item.tier,
                item.partition,
                item.state,
                _iso(item.end),
                item.elapsed,
                item.alloc_tres,
                item.gpu_type,
                item.cpu_hours,
                item.gpu_hours,
                item.mem_gb_hours,
                item.cpu_cost,
                item.gpu_cost,
                item.mem_cost,
                item.cost,
                receipt.currency,
            ]
        )
    return buffer.getvalue()


def paid_csv() -> str:
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(PAID_CSV_COLUMNS)
    for r in Receipt.objects.filter(status=Receipt.Status.PAID).order_by("paid_at"):
        writer.writerow(
            [
                r.pk,
                r.username,
                r.cluster,
                r.job_count,
                r.total,
                r.currency,
                _iso(r.created_at),
                _iso(r.paid_at),
                r.paid_by,
            ]
        )
    return buffer.getvalue()


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def receipt_summary(receipt: Receipt) -> dict[str, Any]:
    """Totals of a receipt per account and tier, from its items (one query)."""
    rows = (
        receipt.items.values("account", "tier")
        .annotate(
            jobs=Count("id"), cost=Sum("cost"), cpu=Sum("cpu_hours"), gpu=Sum("gpu_hours"), mem=Sum("mem_gb_hours")
        )
        .order_by("account", "tier")
    )
    return {"by_account": list(rows)}


# --- the audit log (listing only; userportal.audit writes it) --------------------------------
AUDIT_CSV_COLUMNS = ["seq", "timestamp", "actor", "ip", "user_agent", "method", "path", "action", "target", "status"]
AUDIT_CSV_COLUMNS += ["extra", "prev_hash", "hash"]


def audit_entries(*, action: str = "", actor: str = "", target: str = "", status: str = "", since: date | None = None):
    """Audit entries, newest first, filtered (prefix match on the action: ``billing.`` finds all of billing's)."""
    from userportal.models import AuditEntry

    entries = AuditEntry.objects.all().order_by("-seq")
    if action:
        entries = entries.filter(action__startswith=action)
    if actor:
        entries = entries.filter(actor=actor)
    if target:
        entries = entries.filter(target__icontains=target)
    if status:
        entries = entries.filter(status=status)
    if since:
        entries = entries.filter(timestamp__gte=datetime.combine(since, time.min, tzinfo=UTC))
    return entries


def audit_csv(entries: Iterable[Any]) -> str:
    import json

    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(AUDIT_CSV_COLUMNS)
    for e in entries:
        writer.writerow(
            [
                e.seq,
                _iso(e.timestamp),
                e.actor,
                e.ip or "",
                e.user_agent,
                e.method,
                e.path,
                e.action,
                e.target,
                e.status,
                json.dumps(e.extra, sort_keys=True),
                e.prev_hash,
                e.hash,
            ]
        )
    return buffer.getvalue()
