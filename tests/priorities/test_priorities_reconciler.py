"""Starting and expiring on time, and repairing what differs between the database and Slurm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from priorities.models import PriorityRequest, Status
from priorities.reconciler import activate, expire, reconcile
from slurm.router import allow_writes
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_automatic_activation_and_expiry_run_sacctmgr(personas, make_priority, automatic, fake_sacctmgr):
    start = timezone.now() + timedelta(hours=1)
    priority = make_priority(qos_name="prio_a", status=Status.ACCEPTED, start=start, days=2, members=["member"])
    assert activate(priority, at=start - timedelta(minutes=1)) is False  # not yet
    assert activate(priority, at=start) is True
    assert priority.status == Status.ACTIVE
    assert fake_sacctmgr.calls == [
        ("add_qos", "prio_a", "gres/gpu:a100=1", "2-0", 1000),
        ("add_user_qos", "owner", "def-owner", "prio_a"),
        ("add_user_qos", "member", "def-owner", "prio_a"),
    ]
    fake_sacctmgr.calls.clear()
    assert expire(priority, at=start + timedelta(days=1)) is False  # still valid
    assert expire(priority, at=start + timedelta(days=2)) is True
    assert priority.status == Status.EXPIRED
    assert fake_sacctmgr.calls[-1] == ("delete_qos", "prio_a")
    assert expire(priority, at=start + timedelta(days=3)) is False  # idempotent


def _slurm_has(personas, name, users=(), **fields):
    qos = personas.slurm.qos(name, priority=1000, grp_tres="1002=1", max_wall_duration_per_job=3 * 1440, **fields)
    assoc = personas.slurm.models.assoc
    with allow_writes():
        for user in users:
            assoc.objects.filter(user=user, acct="def-owner").update(delta_qos=f",+{qos.id},")
    return qos


def test_reconcile_starts_and_expires_on_time(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    due = make_priority(qos_name="prio_due", status=Status.ACCEPTED, start=now - timedelta(minutes=5))
    ended = make_priority(
        qos_name="prio_end", status=Status.ACTIVE, start=now - timedelta(days=4), days=3, applied_at=now
    )
    changes = reconcile(at=now)
    assert {(c.priority_id, c.action) for c in changes} >= {(due.pk, "activate"), (ended.pk, "expire")}
    assert PriorityRequest.objects.get(pk=due.pk).status == Status.ACTIVE
    assert PriorityRequest.objects.get(pk=ended.pk).status == Status.EXPIRED
    assert ("delete_qos", "prio_end") in fake_sacctmgr.calls


def test_reconcile_recreates_a_qos_missing_during_its_validity(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    priority = make_priority(
        qos_name="prio_gone", status=Status.ACTIVE, start=now - timedelta(hours=1), applied_at=now, members=["member"]
    )
    changes = reconcile(at=now)
    assert [c.action for c in changes] == ["create-qos", "add-user-qos", "add-user-qos"]
    assert fake_sacctmgr.calls[0] == ("add_qos", "prio_gone", "gres/gpu:a100=1", "3-0", 1000)
    assert AuditEntry.objects.filter(action="priority.reconcile").exists()
    assert priority.pk == changes[0].priority_id


def test_reconcile_leaves_a_correct_qos_alone_and_fixes_users(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    make_priority(qos_name="prio_ok", status=Status.ACTIVE, start=now - timedelta(hours=1), applied_at=now)
    _slurm_has(personas, "prio_ok", users=["owner", "member"])  # member was never added to the request
    changes = reconcile(at=now)
    assert [(c.action, c.detail) for c in changes] == [("remove-user-qos", "member/def-owner prio_ok")]
    assert fake_sacctmgr.calls == [("remove_user_qos", "member", "def-owner", "prio_ok")]


def test_reconcile_deletes_a_qos_left_after_expiry(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    make_priority(qos_name="prio_left", status=Status.EXPIRED, start=now - timedelta(days=5), days=2)
    _slurm_has(personas, "prio_left", users=["owner"])
    changes = reconcile(at=now)
    assert [c.action for c in changes] == ["delete-qos"]
    assert ("delete_qos", "prio_left") in fake_sacctmgr.calls


def test_reconcile_dry_run_and_manual_mode_change_nothing(personas, make_priority, fake_sacctmgr, settings):
    now = timezone.now()
    make_priority(qos_name="prio_left", status=Status.EXPIRED, start=now - timedelta(days=5), days=2)
    _slurm_has(personas, "prio_left")
    settings.PRIORITIES_APPLY_MODE = "automatic"
    assert [c.action for c in reconcile(at=now, dry_run=True)] == ["delete-qos"]
    settings.PRIORITIES_APPLY_MODE = "manual"
    assert [c.action for c in reconcile(at=now)] == ["delete-qos"]
    assert fake_sacctmgr.calls == []


def test_reconcile_warns_of_the_approaching_end_once(
    personas, make_priority, fake_sacctmgr, django_capture_on_commit_callbacks
):
    personas.owner.email = "owner@example.org"
    personas.owner.save()
    now = timezone.now()
    make_priority(qos_name="prio_w", status=Status.ACTIVE, start=now - timedelta(days=2, hours=12), applied_at=now)
    with django_capture_on_commit_callbacks(execute=True):
        reconcile(at=now)
        reconcile(at=now + timedelta(minutes=5))
    assert [m.subject for m in mail.outbox] == [
        f"[GPU priority] Priority #{PriorityRequest.objects.get().pk} ends soon"
    ]
