"""Every CSV billing writes neutralises text a spreadsheet would run as a formula (CSV injection)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from billing.models import Receipt

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

PAYLOAD = "=1+1+cmd|' /C calc'!A0"


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_a_failed_login_name_is_neutralised_in_the_staff_audit_csv(client, personas):
    client.post(reverse("login"), {"username": PAYLOAD, "password": "wrong"})
    client.force_login(personas.staff)
    rows = _rows(client.get(reverse("billing:staff_audit_csv"), {"action": "auth.login_failed"}))
    actors = [row[rows[0].index("actor")] for row in rows[1:]]
    assert actors == ["'" + PAYLOAD]
    assert not any(value.startswith("=") for row in rows for value in row)


def test_usage_and_receipt_csv_neutralise_slurm_text(client, personas, billing_jobs):
    personas.slurm.job("owner", "def-owner", partition=PAYLOAD)
    client.force_login(personas.owner)
    usage = _rows(client.get(reverse("billing:usage_csv", kwargs={"username": "owner"})))
    assert "'" + PAYLOAD in [row[usage[0].index("partition")] for row in usage[1:]]
    client.post(reverse("billing:receipts", kwargs={"username": "owner"}))
    receipt = Receipt.objects.get(username="owner")
    url = reverse("billing:receipt_csv", kwargs={"username": "owner", "receipt_id": receipt.pk})
    items = _rows(client.get(url))
    assert "'" + PAYLOAD in [row[items[0].index("partition")] for row in items[1:]]
    for rows in (usage, items):
        assert not any(value.startswith("=") for row in rows for value in row)


def test_paid_csv_neutralises_names(client, personas):
    Receipt.objects.create(
        username="@SUM(1+1)", cluster="testcluster", currency="THB", total=0, status=Receipt.Status.PAID,
        period_start="2026-01-01T00:00:00Z", period_end="2026-01-02T00:00:00Z", paid_by="+cmd", paid_at="2026-01-03T00:00:00Z",
    )  # fmt: skip
    client.force_login(personas.staff)
    rows = _rows(client.get(reverse("billing:paid_csv")))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["user"], row["paid_by"], row["total"]) == ("'@SUM(1+1)", "'+cmd", "0.00")
