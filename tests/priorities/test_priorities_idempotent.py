"""priorities' tasks run twice (a redelivered message): the second run changes nothing (tests/idempotency.py).

The fake sacctmgr records each call (the boundary) and writes to the test copy of slurmdbd what the
real one would, so the reconciler's second run reads the Slurm the first run left.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from idempotency import run_twice

from priorities.models import PriorityRequest, Status
from priorities.qos import qos_spec
from slurm.models import Qos
from slurm.router import allow_writes
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


class SlurmdbdSacctmgr:
    def __init__(self, slurm):
        self.slurm = slurm
        self.calls = []

    def add_qos(self, spec):
        self.calls.append(("add_qos", spec.name))
        gpu = self.slurm.tres().id_of("gres", f"gpu:{spec.gpu_type}")
        fields = {"priority": spec.priority, "max_wall_duration_per_job": spec.max_wall_minutes}
        fields["grp_tres"] = f"{gpu}={spec.gpu_count}"
        with allow_writes():
            if not Qos.objects.using("slurm").filter(name=spec.name).update(deleted=0, **fields):
                self.slurm.qos(spec.name, **fields)

    def delete_qos(self, name):
        self.calls.append(("delete_qos", name))
        with allow_writes():
            Qos.objects.using("slurm").filter(name=name).update(deleted=1)

    def add_user_qos(self, user, account, qos):
        self.calls.append(("add_user_qos", user, account, qos))
        self._delta(user, account, f"+{Qos.objects.using('slurm').get(name=qos).id}")

    def remove_user_qos(self, user, account, qos):
        self.calls.append(("remove_user_qos", user, account, qos))
        self._delta(user, account, f"-{Qos.objects.using('slurm').get(name=qos).id}")

    def _delta(self, user, account, change):
        self.slurm.assoc_id(user, account)
        assoc = self.slurm.models.assoc.objects.using("slurm").filter(user=user, acct=account, deleted=0)
        with allow_writes():
            for row in assoc:
                assoc.filter(pk=row.pk).update(delta_qos=f"{row.delta_qos or ''},{change},".replace(",,", ","))


@pytest.fixture
def slurmdbd(personas, monkeypatch, automatic):
    from slurm import sacctmgr

    fake = SlurmdbdSacctmgr(personas.slurm)
    monkeypatch.setattr(sacctmgr, "get_client", lambda: fake)
    return fake


def applied(fake, make_priority, name, start, days):
    """An active priority whose QOS slurmdbd has, with its users."""
    priority = make_priority(qos_name=name, status=Status.ACTIVE, start=start, days=days, applied_at=start)
    fake.add_qos(qos_spec(priority))
    fake.add_user_qos("owner", "def-owner", name)
    return priority


def test_activate_creates_the_qos_once(slurmdbd, make_priority, django_capture_on_commit_callbacks):
    now = timezone.now()
    priority = make_priority(
        qos_name="prio_a", status=Status.ACCEPTED, start=now - timedelta(minutes=1), members=["member"]
    )
    first, second = run_twice(
        "priorities.activate", django_capture_on_commit_callbacks, calls=slurmdbd.calls, priority_id=priority.pk
    )
    assert (first, second) == (True, False)
    assert [call[0] for call in slurmdbd.calls] == ["add_qos", "add_user_qos", "add_user_qos"]
    assert PriorityRequest.objects.get(pk=priority.pk).status == Status.ACTIVE


def test_reconcile_starts_warns_and_expires_once(slurmdbd, make_priority, settings, django_capture_on_commit_callbacks):
    settings.PRIORITIES_END_WARNING_HOURS = 48
    now = timezone.now()
    due = make_priority(
        qos_name="prio_due", status=Status.ACCEPTED, start=now - timedelta(minutes=5), members=["member"]
    )
    ending = applied(slurmdbd, make_priority, "prio_ending", now - timedelta(days=2), 3)
    ended = applied(slurmdbd, make_priority, "prio_ended", now - timedelta(days=4), 3)
    slurmdbd.calls.clear()
    first, second = run_twice("priorities.reconcile", django_capture_on_commit_callbacks, calls=slurmdbd.calls)
    assert second == []
    assert {change.split(":")[1].split()[0] for change in first} == {"activate", "warn-end", "expire"}
    statuses = dict(PriorityRequest.objects.values_list("pk", "status"))
    assert (statuses[due.pk], statuses[ending.pk], statuses[ended.pk]) == (Status.ACTIVE, Status.ACTIVE, Status.EXPIRED)
    assert ("delete_qos", "prio_ended") in slurmdbd.calls and ("add_qos", "prio_due") in slurmdbd.calls
    assert AuditEntry.objects.filter(action="priority.reconcile").count() == 1
    assert mail.outbox


def test_manual_mode_reconcile_tells_staff_of_a_removal_once(
    slurmdbd, make_priority, settings, django_capture_on_commit_callbacks
):
    ended = applied(slurmdbd, make_priority, "prio_ended", timezone.now() - timedelta(days=4), 3)  # staff applied it
    settings.PRIORITIES_APPLY_MODE = "manual"
    slurmdbd.calls.clear()
    first, second = run_twice("priorities.reconcile", django_capture_on_commit_callbacks, calls=slurmdbd.calls)
    assert f"priority {ended.pk}: expire prio_ended" in first
    assert PriorityRequest.objects.get(pk=ended.pk).status == Status.EXPIRED
    assert len(mail.outbox) == 1 and slurmdbd.calls == []  # staff remove the QOS; the reconciler only reports it
    assert [change for change in second if "delete-qos" not in change] == []
