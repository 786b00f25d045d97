"""Staff status opens the staff pages read-only; each change needs its staff power (a group with a
permission, granted with `manage.py staff_powers`): billing rates, marking receipts paid, deciding
GPU priorities, reading the audit log, uploading job scripts."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from factories import StaffFactory
from rest_framework.test import APIClient

from billing.models import Rate, Receipt

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def plain(personas):
    return StaffFactory(username="plainstaff")


@pytest.fixture
def receipt(personas):
    return Receipt.objects.create(
        username="owner", cluster="testcluster", currency="THB", total=0,
        period_start="2026-01-01T00:00:00Z", period_end="2026-01-02T00:00:00Z",
    )  # fmt: skip


def powers_cmd(*args: str) -> str:
    out = io.StringIO()
    call_command("staff_powers", *args, stdout=out)
    return out.getvalue()


def test_plain_staff_see_payments_but_cannot_mark_a_receipt_paid(client, plain, receipt):
    client.force_login(plain)
    page = client.get(reverse("billing:staff_receipts"))
    assert page.status_code == 200
    assert reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk}).encode() not in page.content
    assert client.post(reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk})).status_code == 403
    assert Receipt.objects.get(pk=receipt.pk).status == Receipt.Status.PENDING
    powers_cmd("grant", "billing-payments", "--user", "plainstaff")
    assert client.post(reverse("billing:mark_paid", kwargs={"receipt_id": receipt.pk})).status_code == 302
    assert Receipt.objects.get(pk=receipt.pk).status == Receipt.Status.PAID


def test_plain_staff_see_rates_but_cannot_change_them(client, plain):
    client.force_login(plain)
    page = client.get(reverse("billing:staff_rates"))
    assert page.status_code == 200
    assert b'action="' + reverse("billing:formula").encode() not in page.content
    body = json.dumps({"type": "gov", "cpu": "9"})
    assert client.post(reverse("billing:formula"), body, content_type="application/json").status_code == 403
    assert not Rate.objects.filter(price="9").exists()
    powers_cmd("grant", "billing-rates", "--user", "plainstaff")
    assert client.post(reverse("billing:formula"), body, content_type="application/json").status_code == 200


def test_the_audit_log_needs_its_power(client, plain):
    client.force_login(plain)
    assert client.get(reverse("billing:staff_audit")).status_code == 403
    assert client.get(reverse("billing:staff_audit_csv")).status_code == 403
    assert b"billing/staff/audit/" not in client.get(reverse("billing:staff_rates")).content
    powers_cmd("grant", "audit-readers", "--user", "plainstaff")
    assert client.get(reverse("billing:staff_audit")).status_code == 200


def test_staff_upload_job_scripts_only_with_the_power(plain, slurm):
    from userportal.tokens import issue_token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(plain)[1]}")
    data = {"id_job": 11, "submit_script": "#!/bin/bash\n"}
    assert client.post("/api/jobscripts/", data, format="json").status_code == 403
    powers_cmd("grant", "jobscript-uploaders", "--user", "plainstaff")
    assert client.post("/api/jobscripts/", data, format="json").status_code == 201


def test_the_command_lists_grants_and_revokes(plain, personas):
    listing = powers_cmd("list")
    for name in ("billing-rates", "billing-payments", "priority-decisions", "audit-readers", "jobscript-uploaders"):
        assert name in listing
    powers_cmd("grant", "--all", "--all-staff")
    plain.refresh_from_db()
    assert plain.has_perm("billing.add_rate") and plain.has_perm("userportal.view_auditentry")
    powers_cmd("revoke", "billing-rates", "--user", "plainstaff")
    plain = type(plain).objects.get(pk=plain.pk)  # a fresh permission cache
    assert not plain.has_perm("billing.add_rate")
    assert "plainstaff" in powers_cmd("list")
    with pytest.raises(CommandError, match="unknown: nope"):
        powers_cmd("grant", "nope", "--user", "plainstaff")
    with pytest.raises(CommandError, match="--all-staff"):
        powers_cmd("grant", "audit-readers")
