"""Receipts and payments: a receipt bills a user's unbilled jobs once; staff mark it paid. Both audited.

The receipt's items are written by billing.receipt_items (the fast path for 100,000-job receipts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.http import HttpRequest
from django.utils import timezone

from billing.costs import to_money
from billing.models import Receipt
from billing.receipt_items import insert_items
from billing.services import acting_user, price_list, usage
from slurm.jobsource.frame import JobQuery, JobSource
from userportal.audit import audit


class AlreadyBilled(Exception):
    """Another receipt took some of these jobs first (the job key refused a second insert)."""


class NothingToBill(Exception):
    pass


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
    actor = acting_user(request, actor, default=username)
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


def receipts_of(username: str) -> list[Receipt]:
    return list(Receipt.objects.filter(username=username))


def pending_receipts() -> list[Receipt]:
    return list(Receipt.objects.filter(status=Receipt.Status.PENDING).order_by("created_at"))


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


def mark_paid(receipt: Receipt, *, request: HttpRequest | None = None, actor: str = "") -> bool:
    """Mark a pending receipt paid (False if it already was). Audited."""
    actor = acting_user(request, actor)
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
