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


def test_one_failing_request_does_not_stop_the_others_from_expiring(
    personas, make_priority, automatic, fake_sacctmgr, django_capture_on_commit_callbacks
):
    """A user who lost their association makes sacctmgr fail for one request: the others still expire."""
    fake_sacctmgr.lost.add("member")
    now = timezone.now()
    broken = make_priority(
        qos_name="prio_broken", status=Status.ACCEPTED, start=now - timedelta(minutes=5), members=["member"]
    )
    ended = make_priority(
        qos_name="prio_end", status=Status.ACTIVE, start=now - timedelta(days=4), days=3, applied_at=now
    )
    with django_capture_on_commit_callbacks(execute=True):
        changes = reconcile(at=now)
    ended.refresh_from_db()
    assert (ended.status, ended.removed_at) == (Status.EXPIRED, now)
    assert ("delete_qos", "prio_end") in fake_sacctmgr.calls
    # The expiry ran before the failing start.
    actions = [(c.priority_id, c.action) for c in changes]
    assert actions.index((ended.pk, "expire")) < actions.index((broken.pk, "activate"))
    assert (broken.pk, "failed") in actions
    # The error is recorded on the request; the owner still gets the priority.
    broken.refresh_from_db()
    assert broken.status == Status.ACTIVE
    assert "member has no association with account def-owner" in broken.sync_error
    assert broken.sync_error_at == now
    assert ("add_user_qos", "owner", "def-owner", "prio_broken") in fake_sacctmgr.calls
    # Staff get one mail about it, not one per run.
    staff_mail = [m for m in mail.outbox if "staffer@example.org" in m.to]
    assert [m.subject for m in staff_mail] == [f"[GPU priority] Slurm could not be updated for priority #{broken.pk}"]
    assert "member has no association" in staff_mail[0].body
    with django_capture_on_commit_callbacks(execute=True):
        again = reconcile(at=now + timedelta(minutes=5))
    assert (broken.pk, "failed") in [(c.priority_id, c.action) for c in again]
    assert len([m for m in mail.outbox if "staffer@example.org" in m.to]) == 1
    # Once the association is back, the next run gives the QOS and clears the error.
    fake_sacctmgr.lost.clear()
    reconcile(at=now + timedelta(minutes=10))
    broken.refresh_from_db()
    assert (broken.sync_error, broken.sync_error_at) == ("", None)


def test_a_failing_removal_still_expires_and_is_retried(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    fake_sacctmgr.failing_deletes.add("prio_stuck")
    stuck = make_priority(
        qos_name="prio_stuck", status=Status.ACTIVE, start=now - timedelta(days=4), days=3, applied_at=now
    )
    other = make_priority(
        qos_name="prio_fine", status=Status.ACTIVE, start=now - timedelta(days=4), days=3, applied_at=now
    )
    reconcile(at=now)
    stuck.refresh_from_db()
    other.refresh_from_db()
    assert (stuck.status, stuck.removed_at) == (Status.EXPIRED, None)
    assert "slurmdbd is busy" in stuck.sync_error
    assert (other.status, other.removed_at, other.sync_error) == (Status.EXPIRED, now, "")
    # The QOS is still in Slurm: the next run deletes it as drift.
    _slurm_has(personas, "prio_stuck", users=["owner"])
    fake_sacctmgr.failing_deletes.clear()
    later = now + timedelta(minutes=5)
    assert [c.action for c in reconcile(at=later)] == ["delete-qos"]
    stuck.refresh_from_db()
    assert (stuck.removed_at, stuck.sync_error) == (later, "")


def test_dry_run_records_no_error(personas, make_priority, automatic, fake_sacctmgr):
    fake_sacctmgr.lost.add("member")
    now = timezone.now()
    priority = make_priority(
        qos_name="prio_dry", status=Status.ACTIVE, start=now - timedelta(hours=1), applied_at=now, members=["member"]
    )
    reconcile(at=now, dry_run=True)
    priority.refresh_from_db()
    assert priority.sync_error == ""
    assert fake_sacctmgr.calls == []


def test_manual_expiry_waits_for_the_removal_and_tells_staff(
    personas, make_priority, fake_sacctmgr, django_capture_on_commit_callbacks
):
    from priorities.services import staff_search

    now = timezone.now()
    priority = make_priority(
        qos_name="prio_m",
        status=Status.ACTIVE,
        start=now - timedelta(days=4),
        days=3,
        applied_at=now - timedelta(days=4),
    )
    qos = _slurm_has(personas, "prio_m", users=["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        reconcile(at=now)
        reconcile(at=now + timedelta(minutes=5))
    priority.refresh_from_db()
    assert (priority.status, priority.removed_at, priority.removal_pending) == (Status.EXPIRED, None, True)
    assert fake_sacctmgr.calls == []  # manual mode: staff run the commands
    staff_mail = [m for m in mail.outbox if "staffer@example.org" in m.to]
    assert [m.subject for m in staff_mail] == [f"[GPU priority] Remove priority #{priority.pk} from Slurm"]
    assert "sacctmgr delete qos prio_m" in staff_mail[0].body
    assert priority in staff_search({})  # the default staff view keeps it until the removal is confirmed

    # Staff ran the commands: slurmdbd no longer has the QOS, and the next run confirms it.
    with allow_writes():
        type(qos).objects.filter(pk=qos.pk).update(deleted=1)
    later = now + timedelta(minutes=10)
    changes = reconcile(at=later)
    assert [(c.priority_id, c.action) for c in changes] == [(priority.pk, "removal-confirmed")]
    priority.refresh_from_db()
    assert (priority.removed_at, priority.removal_pending) == (later, False)
    assert priority not in staff_search({})


def test_dry_run_confirms_no_removal(personas, make_priority, fake_sacctmgr):
    now = timezone.now()
    priority = make_priority(
        qos_name="prio_n",
        status=Status.EXPIRED,
        start=now - timedelta(days=4),
        days=3,
        applied_at=now - timedelta(days=4),
    )
    assert [c.action for c in reconcile(at=now, dry_run=True)] == ["removal-confirmed"]
    priority.refresh_from_db()
    assert priority.removal_pending
