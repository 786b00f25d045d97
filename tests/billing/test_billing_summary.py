"""billing's section of the user summary: unpaid receipts and the balance of the user's budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from factories import sample_receipt

from billing.models import Budget, Receipt

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def section(client, username="owner"):
    response = client.get(reverse("usersummary:user", kwargs={"username": username}))
    return next(i for i in response.context["sections"] if i.section.key == "billing")


def test_unpaid_receipts_and_budget_balance(client, billing_jobs, personas):
    sample_receipt("owner", total="12.50")
    paid = sample_receipt("owner", total="99.00")
    Receipt.objects.filter(pk=paid.pk).update(status=Receipt.Status.PAID)
    today = datetime.now(tz=UTC).date()
    Budget.objects.create(
        cluster="testcluster", account="def-owner", amount=Decimal("100"),
        start=today - timedelta(days=9), end=today + timedelta(days=20),
    )  # fmt: skip
    client.force_login(personas.owner)
    item = section(client)
    assert item.unavailable is None
    assert "1 unpaid receipt: 12.50 THB" in item.html
    assert "99.00" not in item.html
    assert reverse("billing:account_forecast", kwargs={"account": "def-owner"}) in item.html
    assert item.link == reverse("billing:usage", kwargs={"username": "owner"})


def test_no_receipt_and_no_budget(client, personas):
    client.force_login(personas.owner)
    item = section(client)
    assert "No unpaid receipt." in item.html
