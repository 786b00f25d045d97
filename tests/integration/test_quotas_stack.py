"""quotas against the stack's Robinhood-schema database (scripts/stack.d/robinhood.sh): exact figures."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from quotas import alerts
from quotas.models import QuotaAlert

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm", "robinhood"])]
GIB = 1024**3


@pytest.fixture
def users(stack_dir):
    User = get_user_model()
    return {name: User.objects.create_user(name, email=f"{name}@example.org") for name in ("alice", "bob", "carol")}


def test_alice_sees_physics_with_robinhoods_exact_figures(client, users):
    client.force_login(users["alice"])
    response = client.get(reverse("quotas:user", kwargs={"username": "alice"}))
    assert response.status_code == 200
    reports = {r.group: r for r in response.context["reports"]}
    physics = reports["physics"]
    # '' and new rows: blocks × 512 (root and staffer's rows are in the group's total)
    assert physics.project.bytes == (150 + 20 + 2) * GIB + 4096 * 1200 + 1048576 + 4096
    assert physics.project.inodes == 42000 + 1200 + 3100 + 150 + 2 + 1
    assert physics.nearline_disk.bytes == (300 + 10) * GIB  # synchro + modified
    assert physics.nearline_tape.bytes == 2048 * GIB  # released: size, 0 blocks
    assert [u.user for u in physics.users] == ["alice", "bob"]  # root excluded; staffer has only 2 entries


def test_carol_sees_chem_near_its_default_quota(client, users):
    client.force_login(users["carol"])
    reports = client.get(reverse("quotas:user", kwargs={"username": "carol"})).context["reports"]
    chem = {r.group: r for r in reports}["chem"]
    assert chem.bytes_percent == pytest.approx((920 * GIB + 4096 * 5000 + 4096) / 1024**4 * 100)
    assert [u.user for u in chem.users] == ["carol", "bob"]


def test_users_cannot_see_each_others_storage(client, users):
    client.force_login(users["alice"])
    assert client.get(reverse("quotas:user", kwargs={"username": "bob"})).status_code == 403


def test_alert_task_warns_chem_members(users, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = alerts.check_quotas(cluster="testcluster")
    assert "chem" in result.raised
    assert QuotaAlert.objects.get(group="chem").level == 80
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert "carol@example.org" in recipients
    assert "bob@example.org" in recipients
    assert "alice@example.org" not in recipients
