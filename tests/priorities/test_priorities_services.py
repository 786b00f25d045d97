"""Filing a request, the staff's decisions, users and commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.app.task import Task
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone
from priorities_helpers import request_data

from priorities import services
from priorities.models import PriorityRequest, Status
from priorities.qos import commands
from priorities.reconciler import reconcile
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_create_request_mails_the_admins_after_commit_and_audits(personas, django_capture_on_commit_callbacks):
    personas.staff.email = "staff@example.org"
    personas.staff.save()
    with django_capture_on_commit_callbacks(execute=True):
        priority = services.create_request(request_data(), user=personas.owner, cluster=personas.slurm.cluster)
    assert priority.usernames() == ["owner", "member"]
    assert priority.end == priority.start + timedelta(days=7)
    assert [m.to for m in mail.outbox] == [["staff@example.org"]]
    assert "New request" in mail.outbox[0].subject
    assert AuditEntry.objects.filter(action="priority.request", target=f"priority:{priority.pk}").exists()


def test_priority_admins_replace_staff_as_recipients(personas, django_capture_on_commit_callbacks):
    from priorities.models import PriorityAdmin

    PriorityAdmin.objects.create(username="boss", email="boss@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        services.create_request(request_data(), user=personas.owner, cluster=personas.slurm.cluster)
    assert mail.outbox[0].to == ["boss@example.org"]


def test_an_invalid_request_is_not_created(personas):
    with pytest.raises(ValidationError) as info:
        services.create_request(request_data(duration_days=30), user=personas.owner, cluster=personas.slurm.cluster)
    assert "duration_days" in info.value.message_dict
    assert not PriorityRequest.objects.exists()


# --- decisions --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bad name", "-x", "a;b", "é", ""])
def test_accept_refuses_bad_qos_names(personas, make_priority, name):
    priority = make_priority()
    with pytest.raises(ValidationError, match="letters, digits"):
        services.accept(priority, qos_name=name, actor="staffer")
    priority.refresh_from_db()
    assert priority.status == Status.PENDING


def test_accept_refuses_a_name_in_use_by_a_priority_or_slurm(personas, make_priority):
    make_priority(qos_name="taken", status=Status.ACCEPTED)
    personas.slurm.qos("normal")
    with pytest.raises(ValidationError, match="Another priority"):
        services.accept(make_priority(), qos_name="taken", actor="staffer")
    with pytest.raises(ValidationError, match="Slurm already has a QOS named normal"):
        services.accept(make_priority(), qos_name="normal", actor="staffer")


def test_accept_mails_the_users_and_audits(personas, make_priority, django_capture_on_commit_callbacks):
    personas.owner.email, personas.member.email = "owner@example.org", "member@example.org"
    personas.owner.save()
    personas.member.save()
    priority = make_priority(members=["member"])
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(priority, qos_name="prio_1", actor="staffer")
    assert priority.status == Status.ACCEPTED
    assert mail.outbox[0].to == ["member@example.org", "owner@example.org"]
    assert "--qos=prio_1" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="priority.accept", extra__qos="prio_1").exists()


def test_automatic_accept_of_a_started_priority_activates_it_at_once(
    personas, make_priority, automatic, fake_sacctmgr, django_capture_on_commit_callbacks
):
    priority = make_priority(start=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(priority, qos_name="prio_now", actor="staffer")
    priority.refresh_from_db()
    assert priority.status == Status.ACTIVE  # one immediate task (run eagerly here)
    assert fake_sacctmgr.calls[0][:2] == ("add_qos", "prio_now")


def test_automatic_accept_of_a_later_priority_queues_nothing_and_the_reconciler_starts_it(
    personas, make_priority, automatic, fake_sacctmgr, django_capture_on_commit_callbacks, monkeypatch
):
    # No task with an ETA: Redis would redeliver it after its visibility timeout until the start.
    queued = []
    start = timezone.now() + timedelta(days=3)
    priority = make_priority(start=start)
    with monkeypatch.context() as patch, django_capture_on_commit_callbacks(execute=True):
        patch.setattr(Task, "apply_async", lambda self, *args, **kwargs: queued.append((self.name, kwargs)))
        services.accept(priority, qos_name="prio_later", actor="staffer")
    assert queued == []
    assert fake_sacctmgr.calls == []
    reconcile(at=start + timedelta(minutes=1))  # the first beat run after the start
    priority.refresh_from_db()
    assert priority.status == Status.ACTIVE
    assert priority.applied_at == start + timedelta(minutes=1)


def test_refuse_needs_a_reason_and_mails_it(personas, make_priority, django_capture_on_commit_callbacks):
    personas.owner.email = "owner@example.org"
    personas.owner.save()
    priority = make_priority()
    with pytest.raises(ValidationError):
        services.refuse(priority, reason=" ", actor="staffer")
    with django_capture_on_commit_callbacks(execute=True):
        services.refuse(priority, reason="No PI approval in the ticket.", actor="staffer")
    assert priority.status == Status.REFUSED
    assert "No PI approval" in mail.outbox[0].body


def test_messages_are_mailed_and_kept_in_history(personas, make_priority, django_capture_on_commit_callbacks):
    personas.owner.email = "owner@example.org"
    personas.owner.save()
    priority = make_priority()
    with django_capture_on_commit_callbacks(execute=True):
        services.add_message(priority, text="Please split the request.", actor="staffer")
    assert "Please split the request." in mail.outbox[0].body
    assert priority.messages.get().history.count() == 1
    assert AuditEntry.objects.filter(action="priority.message").exists()


def test_commands_are_generated_and_follow_the_users(personas, make_priority):
    priority = make_priority(qos_name="prio_7", gpu_count=2, days=5, members=["member"], status=Status.ACCEPTED)
    assert commands(priority) == {
        "apply": [
            "sacctmgr add qos prio_7 GrpTRES=gres/gpu:a100=2 MaxWall=5-0 Priority=1000",
            "sacctmgr modify user owner set qos+=prio_7 where account=def-owner",
            "sacctmgr modify user member set qos+=prio_7 where account=def-owner",
        ],
        "remove": [
            "sacctmgr modify user owner set qos-=prio_7 where account=def-owner",
            "sacctmgr modify user member set qos-=prio_7 where account=def-owner",
            "sacctmgr delete qos prio_7",
        ],
    }
    services.remove_user(priority, username="member", actor="staffer")
    priority = PriorityRequest.objects.get(pk=priority.pk)
    assert len(commands(priority)["apply"]) == 2


def test_add_users_needs_an_association(personas, make_priority):
    priority = make_priority()
    with pytest.raises(ValidationError, match="outsider"):
        services.add_users(priority, usernames=["outsider"], actor="staffer")
    assert services.add_users(priority, usernames=["member", "owner"], actor="staffer") == ["member"]


def test_users_added_to_an_active_priority_get_the_qos_in_automatic_mode(
    personas, make_priority, automatic, fake_sacctmgr
):
    priority = make_priority(qos_name="prio_u", status=Status.ACTIVE, start=timezone.now())
    services.add_users(priority, usernames=["member"], actor="staffer")
    services.remove_user(priority, username="member", actor="staffer")
    assert fake_sacctmgr.calls == [
        ("add_user_qos", "member", "def-owner", "prio_u"),
        ("remove_user_qos", "member", "def-owner", "prio_u"),
    ]


def test_manual_mode_staff_mark_applied_and_removed(personas, make_priority, fake_sacctmgr):
    priority = make_priority(qos_name="prio_m", status=Status.ACCEPTED)
    services.mark_applied(priority, actor="staffer")
    assert priority.status == Status.ACTIVE
    services.mark_removed(priority, actor="staffer")
    assert priority.status == Status.EXPIRED
    assert priority.removed_at
    assert fake_sacctmgr.calls == []
