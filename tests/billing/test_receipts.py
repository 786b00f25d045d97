"""Receipts: unbilled jobs only, the job key against double billing, rates frozen, payments audited."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import budgets, exports, ledger, services
from billing.models import Receipt, ReceiptItem, Tier
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_receipt_bills_the_unbilled_jobs_at_their_rates(billing_jobs, owner_query, personas):
    receipt = ledger.create_receipt("owner", owner_query, actor="owner")
    items = {item.job_id: item for item in receipt.items.all()}
    cpu, gpu = items[billing_jobs["cpu"].id_job], items[billing_jobs["gpu"].id_job]
    assert cpu.cpu_hours == Decimal("8.0000")
    assert cpu.cpu_cost == Decimal("4.00")
    assert cpu.mem_cost == Decimal("0.40")  # 4 GB × 2 h × 0.05
    assert gpu.gpu_cost == Decimal("15.00")  # 1 a100-hour × factor 1 × 15
    assert receipt.total == sum(i.cost for i in items.values())
    assert receipt.job_count == 3  # the fixture's default owner job too
    assert receipt.source == "database"
    assert receipt.rates["tiers"]["mu"]["cpu"][-1][1] == "0.5000"
    entry = AuditEntry.objects.get(action="billing.receipt.create")
    assert entry.target == f"receipt:{receipt.pk}"
    assert entry.actor == "owner"


def test_billed_jobs_are_filtered_out_and_the_job_key_refuses_a_second_bill(billing_jobs, owner_query, orm_items):
    ledger.create_receipt("owner", owner_query)
    with pytest.raises(ledger.NothingToBill):
        ledger.create_receipt("owner", owner_query)
    # A request that fetched the jobs before the first receipt committed: the unique key refuses it.
    found = services.usage(owner_query)
    assert (found.jobs["billed"] != 0).all()
    second = Receipt.objects.create(
        username="owner", cluster="testcluster", currency="THB", total=0, period_start=owner_query.start,
        period_end=owner_query.end,
    )  # fmt: skip
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ReceiptItem.objects.bulk_create(orm_items(second, found.jobs))


def test_a_race_rolls_back_the_whole_losing_receipt(billing_jobs, owner_query, monkeypatch):
    ledger.create_receipt("owner", owner_query)
    real_usage = ledger.usage

    def stale_usage(query, sources=None):  # as if read before the other receipt was committed
        found = real_usage(query, sources)
        found.jobs["billed"] = 0
        return found

    monkeypatch.setattr(ledger, "usage", stale_usage)
    before = Receipt.objects.count()
    with pytest.raises(ledger.AlreadyBilled):
        ledger.create_receipt("owner", owner_query)
    assert Receipt.objects.count() == before
    assert AuditEntry.objects.filter(action="billing.receipt.create", status="conflict").exists()


def test_rates_changed_after_a_receipt_leave_it_unchanged(billing_jobs, owner_query):
    receipt = ledger.create_receipt("owner", owner_query)
    total, items = receipt.total, list(receipt.items.values_list("cost", flat=True))
    services.set_rates(Tier.objects.get(slug="mu"), {"cpu": Decimal("9.0"), "gpu": Decimal("99")}, actor="staffer")
    receipt.refresh_from_db()
    assert receipt.total == total
    assert list(receipt.items.values_list("cost", flat=True)) == items
    assert exports.receipt_csv(receipt).count("\n") == 4
    # Jobs that ended before the change keep their old rate on the usage page too.
    assert services.usage(owner_query).totals()["cost"] == total
    entry = AuditEntry.objects.get(action="billing.rates.update")
    assert entry.target == "tier:mu"
    assert entry.extra["after"] == {"cpu": "9.0", "gpu": "99"}


def test_mark_paid_is_audited_once(billing_jobs, owner_query):
    receipt = ledger.create_receipt("owner", owner_query)
    assert ledger.mark_paid(receipt, actor="staffer") is True
    assert ledger.mark_paid(receipt, actor="staffer") is False
    assert receipt.status == Receipt.Status.PAID
    assert receipt.paid_by == "staffer"
    assert AuditEntry.objects.filter(action="billing.receipt.paid", target=f"receipt:{receipt.pk}").count() == 1
    header, row = exports.paid_csv().splitlines()
    assert header.split(",") == exports.PAID_CSV_COLUMNS
    assert row.split(",")[0] == str(receipt.pk)


def test_forecast_and_ood_balance(billing_jobs, personas):
    from datetime import UTC, datetime, timedelta

    from billing.models import Budget

    today = datetime.now(tz=UTC).date()
    Budget.objects.create(
        cluster="testcluster",
        account="def-owner",
        amount=Decimal("100"),
        start=today - timedelta(days=9),
        end=today + timedelta(days=20),
    )
    forecast = budgets.forecast("def-owner", "testcluster")
    assert forecast.spent > 0
    assert forecast.burn_per_day > 0
    assert forecast.remaining == Decimal("100") - forecast.spent
    assert forecast.runs_out is not None
    assert forecast.runs_out >= today
    balance = budgets.ood_balance([forecast])
    assert balance["version"] == 1
    assert balance["balances"] == [{"project": "def-owner", "value": float(forecast.remaining)}]
