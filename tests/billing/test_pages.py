"""Billing pages as the personas see them: usage, receipts, the formula API, staff pages, CSV columns."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from billing import exports, ledger, services
from billing.models import Rate, Receipt
from slurm.jobsource.frame import JobSourceError
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_usage_page_shows_costs_totals_and_the_source(client, personas, billing_jobs):
    client.force_login(personas.owner)
    for tab in ("detail", "aggregate", "billed", "efficiency"):
        response = client.get(reverse("billing:usage", kwargs={"username": "owner"}), {"tab": tab})
        assert response.status_code == 200
        assert response.context["source"] == "database"
    billed = client.get(reverse("billing:usage", kwargs={"username": "owner"}), {"tab": "billed"})
    assert billed.context["totals"]["jobs"] == 0  # nothing billed yet
    response = client.get(reverse("billing:usage", kwargs={"username": "owner"}))
    assert response.context["totals"]["jobs"] == 3
    assert b"database source" in response.content


def test_usage_csv_has_the_documented_columns(client, personas, billing_jobs):
    client.force_login(personas.owner)
    response = client.get(reverse("billing:usage_csv", kwargs={"username": "owner"}))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [name for name, _ in exports.USAGE_CSV_COLUMNS]
    assert len(rows) == 4


def test_outsider_cannot_see_the_owner_usage_or_receipts(client, personas, billing_jobs):
    client.force_login(personas.outsider)
    assert client.get(reverse("billing:usage", kwargs={"username": "owner"})).status_code == 403
    receipt = Receipt.objects.create(
        username="owner", cluster="testcluster", currency="THB", total=0,
        period_start="2026-01-01T00:00:00Z", period_end="2026-01-02T00:00:00Z",
    )  # fmt: skip
    url = reverse("billing:receipt", kwargs={"username": "outsider", "receipt_id": receipt.pk})
    assert client.get(url).status_code == 404  # their own URL, someone else's receipt


def test_create_receipt_from_the_page_then_csv_and_print(client, personas, billing_jobs):
    client.force_login(personas.owner)
    response = client.post(reverse("billing:receipts", kwargs={"username": "owner"}))
    receipt = Receipt.objects.get(username="owner")
    assert response.status_code == 302
    assert str(receipt.pk) in response["Location"]
    kwargs = {"username": "owner", "receipt_id": receipt.pk}
    assert client.get(reverse("billing:receipt", kwargs=kwargs)).status_code == 200
    assert client.get(reverse("billing:receipt_print", kwargs=kwargs)).status_code == 200
    rows = list(csv.reader(io.StringIO(client.get(reverse("billing:receipt_csv", kwargs=kwargs)).content.decode())))
    assert rows[0] == exports.RECEIPT_CSV_COLUMNS
    assert len(rows) == 4
    client.post(reverse("billing:receipts", kwargs={"username": "owner"}))
    assert Receipt.objects.filter(username="owner").count() == 1  # nothing left to bill


def test_member_cannot_create_a_receipt_for_the_owner(client, personas, billing_jobs):
    client.force_login(personas.member)
    assert client.post(reverse("billing:receipts", kwargs={"username": "owner"})).status_code == 403


def test_formula_get_is_json_and_post_is_staff_only_and_audited(client, personas):
    client.force_login(personas.owner)
    body = client.get(reverse("billing:formula"), {"type": "gov"}).json()
    assert body["type"] == "gov"
    assert body["currency"] == "THB"
    assert body["rates"]["cpu"] == "1.0000"
    assert client.get(reverse("billing:formula"), {"type": "nope"}).status_code == 404
    assert client.post(reverse("billing:formula"), {"type": "gov", "cpu": "3"}).status_code == 403
    client.force_login(personas.staff)
    response = client.post(
        reverse("billing:formula"), json.dumps({"type": "gov", "cpu": "3.25"}), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["rates"]["cpu"] == "3.2500"
    bad = client.post(
        reverse("billing:formula"), json.dumps({"type": "gov", "cpu": "-1"}), content_type="application/json"
    )
    assert bad.status_code == 400
    assert "cpu" in bad.json()["errors"]
    assert client.post(reverse("billing:formula"), {"type": "gov", "gpu": "31"}).status_code == 302  # the staff form
    assert Rate.objects.filter(tier="gov", resource="gpu", price="31").exists()
    assert AuditEntry.objects.filter(action="billing.rates.update", actor="staffer").count() == 2


def test_staff_pages_render(client, personas, billing_jobs):
    client.force_login(personas.staff)
    receipt = ledger.create_receipt("owner", _query(personas), actor="owner")
    for name in (
        "staff_rates",
        "staff_usage",
        "staff_receipts",
        "staff_audit",
        "staff_charts",
        "playground",
        "forecasts",
    ):
        assert client.get(reverse(f"billing:{name}")).status_code == 200, name
    charts = client.get(reverse("billing:staff_charts_json")).json()
    assert charts["by_tier"]["series"]["mu"]
    assert charts["by_account"]["months"]
    response = client.post(reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk}))
    assert response.status_code == 302
    receipt.refresh_from_db()
    assert receipt.status == "paid"
    audit_csv = client.get(reverse("billing:staff_audit_csv"), {"action": "billing."}).content.decode()
    rows = list(csv.reader(io.StringIO(audit_csv)))
    assert rows[0] == exports.AUDIT_CSV_COLUMNS
    assert {row[7] for row in rows[1:]} == {"billing.receipt.create", "billing.receipt.paid"}
    page = client.get(reverse("billing:staff_audit"), {"action": "billing.receipt.paid"})
    assert [e.action for e in page.context["page"].object_list] == ["billing.receipt.paid"]
    paid = client.get(reverse("billing:paid_csv")).content.decode().splitlines()
    assert paid[0].split(",") == exports.PAID_CSV_COLUMNS
    assert len(paid) == 2


def test_playground_calculates_without_javascript(client, personas):
    client.force_login(personas.owner)
    response = client.get(
        reverse("billing:playground"),
        {"type": "mu", "cpu_hours": "10", "gpu_hours": "1", "gpu_type": "v100", "mem_gb_hours": "0"},
    )
    assert str(response.context["result"]["total"]) == "14.00"  # 10 × 0.5 + 1 × 0.6 × 15


def test_pages_render_a_notice_when_every_source_is_down(client, personas, monkeypatch):
    def down(query, sources=None):
        raise JobSourceError("all down")

    monkeypatch.setattr(services, "fetch_jobs", down)
    client.force_login(personas.owner)
    response = client.get(reverse("billing:usage", kwargs={"username": "owner"}))
    assert response.status_code == 200
    assert response.context["unavailable"]
    assert client.get(reverse("billing:usage_csv", kwargs={"username": "owner"})).status_code == 503


@pytest.mark.parametrize("n_jobs", [1, 5])
def test_usage_page_query_count_is_flat(client, personas, n_jobs, django_assert_max_num_queries):
    for _ in range(n_jobs):
        personas.slurm.job("owner", "def-owner")
    client.force_login(personas.owner)
    with django_assert_max_num_queries(8), django_assert_max_num_queries(6, using="slurm"):
        assert client.get(reverse("billing:usage", kwargs={"username": "owner"})).status_code == 200


def _query(personas):
    from datetime import UTC, datetime, timedelta

    from slurm.jobsource.frame import JobQuery

    now = datetime.fromtimestamp(personas.slurm.now, tz=UTC)
    return JobQuery(now - timedelta(days=1), now, "testcluster", user="owner")
