"""The policy, the decisions, the sacctmgr commands, and expiry and reconciliation against slurmdbd."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.app.task import Task
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from priorities import services
from priorities.models import PriorityRequest, Status
from slurm.router import allow_writes
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def data(**overrides):
    values = {
        "account": "def-owner",
        "gpu_type": "a100",
        "gpu_count": 2,
        "start": timezone.now() + timedelta(hours=2),
        "duration_days": 7,
        "justification": "paper deadline",
        "ticket": "4242",
        "users": ["member"],
    }
    values.update(overrides)
    return services.RequestData(**values)


def check(personas, **overrides):
    return services.validate_request(data(**overrides), username="owner", cluster=personas.slurm.cluster)


def test_a_request_within_the_policy_passes(personas):
    assert check(personas) == {}


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"duration_days": 15}, "duration_days", "at most 14 days"),
        ({"duration_days": 0}, "duration_days", "at least one day"),
        ({"gpu_count": 5}, "gpu_count", "At most 4 a100 GPUs per request"),
        ({"gpu_count": 0}, "gpu_count", "at least one GPU"),
        ({"gpu_type": "h100"}, "gpu_type", "no GPU type h100"),
        ({"account": "def-other"}, "account", "no association with the Slurm account def-other"),
        ({"start": timezone.now() - timedelta(days=1)}, "start", "in the past"),
        ({"ticket": "see my mail"}, "ticket", "Bugzilla ticket number"),
        ({"justification": "  "}, "justification", "Explain"),
        ({"users": ["outsider"]}, "users", "no association with def-owner: outsider"),
        ({"users": ["bad;name"]}, "users", "Not valid user names"),
    ],
)
def test_each_policy_violation_is_explained_on_its_field(personas, overrides, field, text):
    errors = check(personas, **overrides)
    assert field in errors, errors
    assert any(text in message for message in errors[field]), errors[field]


def test_ticket_links_and_numbers_are_accepted(personas):
    assert "ticket" not in check(personas, ticket="https://bugzilla.example.org/show_bug.cgi?id=12")
    assert "ticket" not in check(personas, ticket="#12")


def test_limits_are_configurable_per_gpu_type(personas, settings):
    settings.PRIORITIES_MAX_GPUS_PER_REQUEST = ["a100=1", "*=8"]
    settings.PRIORITIES_MAX_DAYS = 3
    errors = check(personas, gpu_count=2, duration_days=4)
    assert "At most 1 a100" in errors["gpu_count"][0]
    assert "at most 3 days" in errors["duration_days"][0]
    assert "gpu_count" not in check(personas, gpu_type="v100", gpu_count=8, duration_days=3)


def test_account_gpu_limit_counts_overlapping_open_requests_only(personas, make_priority, settings):
    settings.PRIORITIES_MAX_GPUS_PER_ACCOUNT = ["a100=4"]
    start = timezone.now() + timedelta(days=1)
    make_priority(gpu_count=3, start=start, days=3, status=Status.ACCEPTED)
    make_priority(gpu_count=4, start=start + timedelta(days=10), days=2)  # later: does not overlap
    make_priority(gpu_count=4, start=start, days=3, status=Status.REFUSED)  # refused: holds nothing
    errors = check(personas, gpu_count=2, start=start + timedelta(days=1), duration_days=1)
    assert "hold at most 4 a100 GPUs at once" in errors["gpu_count"][0]
    assert "gpu_count" not in check(personas, gpu_count=1, start=start, duration_days=1)


def test_open_requests_per_account_are_limited(personas, make_priority, settings):
    settings.PRIORITIES_MAX_ACTIVE_PER_ACCOUNT = 2
    make_priority(gpu_type="v100")
    make_priority(gpu_type="v100", status=Status.ACTIVE)
    make_priority(gpu_type="v100", status=Status.EXPIRED)
    assert "already has 2 open requests" in check(personas)["account"][0]


def test_create_request_mails_the_admins_after_commit_and_audits(personas, django_capture_on_commit_callbacks):
    personas.staff.email = "staff@example.org"
    personas.staff.save()
    with django_capture_on_commit_callbacks(execute=True):
        priority = services.create_request(data(), user=personas.owner, cluster=personas.slurm.cluster)
    assert priority.usernames() == ["owner", "member"]
    assert priority.end == priority.start + timedelta(days=7)
    assert [m.to for m in mail.outbox] == [["staff@example.org"]]
    assert "New request" in mail.outbox[0].subject
    assert AuditEntry.objects.filter(action="priority.request", target=f"priority:{priority.pk}").exists()


def test_priority_admins_replace_staff_as_recipients(personas, django_capture_on_commit_callbacks):
    from priorities.models import PriorityAdmin

    PriorityAdmin.objects.create(username="boss", email="boss@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        services.create_request(data(), user=personas.owner, cluster=personas.slurm.cluster)
    assert mail.outbox[0].to == ["boss@example.org"]


def test_an_invalid_request_is_not_created(personas):
    with pytest.raises(ValidationError) as info:
        services.create_request(data(duration_days=30), user=personas.owner, cluster=personas.slurm.cluster)
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
    services.reconcile(at=start + timedelta(minutes=1))  # the first beat run after the start
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
    assert services.commands(priority) == {
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
    assert len(services.commands(priority)["apply"]) == 2


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


# --- start, expiry, reconciliation ----------------------------------------------------------
def test_automatic_activation_and_expiry_run_sacctmgr(personas, make_priority, automatic, fake_sacctmgr):
    start = timezone.now() + timedelta(hours=1)
    priority = make_priority(qos_name="prio_a", status=Status.ACCEPTED, start=start, days=2, members=["member"])
    assert services.activate(priority, at=start - timedelta(minutes=1)) is False  # not yet
    assert services.activate(priority, at=start) is True
    assert priority.status == Status.ACTIVE
    assert fake_sacctmgr.calls == [
        ("add_qos", "prio_a", "gres/gpu:a100=1", "2-0", 1000),
        ("add_user_qos", "owner", "def-owner", "prio_a"),
        ("add_user_qos", "member", "def-owner", "prio_a"),
    ]
    fake_sacctmgr.calls.clear()
    assert services.expire(priority, at=start + timedelta(days=1)) is False  # still valid
    assert services.expire(priority, at=start + timedelta(days=2)) is True
    assert priority.status == Status.EXPIRED
    assert fake_sacctmgr.calls[-1] == ("delete_qos", "prio_a")
    assert services.expire(priority, at=start + timedelta(days=3)) is False  # idempotent


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
    changes = services.reconcile(at=now)
    assert {(c.priority_id, c.action) for c in changes} >= {(due.pk, "activate"), (ended.pk, "expire")}
    assert PriorityRequest.objects.get(pk=due.pk).status == Status.ACTIVE
    assert PriorityRequest.objects.get(pk=ended.pk).status == Status.EXPIRED
    assert ("delete_qos", "prio_end") in fake_sacctmgr.calls


def test_reconcile_recreates_a_qos_missing_during_its_validity(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    priority = make_priority(
        qos_name="prio_gone", status=Status.ACTIVE, start=now - timedelta(hours=1), applied_at=now, members=["member"]
    )
    changes = services.reconcile(at=now)
    assert [c.action for c in changes] == ["create-qos", "add-user-qos", "add-user-qos"]
    assert fake_sacctmgr.calls[0] == ("add_qos", "prio_gone", "gres/gpu:a100=1", "3-0", 1000)
    assert AuditEntry.objects.filter(action="priority.reconcile").exists()
    assert priority.pk == changes[0].priority_id


def test_reconcile_leaves_a_correct_qos_alone_and_fixes_users(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    make_priority(qos_name="prio_ok", status=Status.ACTIVE, start=now - timedelta(hours=1), applied_at=now)
    _slurm_has(personas, "prio_ok", users=["owner", "member"])  # member was never added to the request
    changes = services.reconcile(at=now)
    assert [(c.action, c.detail) for c in changes] == [("remove-user-qos", "member/def-owner prio_ok")]
    assert fake_sacctmgr.calls == [("remove_user_qos", "member", "def-owner", "prio_ok")]


def test_reconcile_deletes_a_qos_left_after_expiry(personas, make_priority, automatic, fake_sacctmgr):
    now = timezone.now()
    make_priority(qos_name="prio_left", status=Status.EXPIRED, start=now - timedelta(days=5), days=2)
    _slurm_has(personas, "prio_left", users=["owner"])
    changes = services.reconcile(at=now)
    assert [c.action for c in changes] == ["delete-qos"]
    assert ("delete_qos", "prio_left") in fake_sacctmgr.calls


def test_reconcile_dry_run_and_manual_mode_change_nothing(personas, make_priority, fake_sacctmgr, settings):
    now = timezone.now()
    make_priority(qos_name="prio_left", status=Status.EXPIRED, start=now - timedelta(days=5), days=2)
    _slurm_has(personas, "prio_left")
    settings.PRIORITIES_APPLY_MODE = "automatic"
    assert [c.action for c in services.reconcile(at=now, dry_run=True)] == ["delete-qos"]
    settings.PRIORITIES_APPLY_MODE = "manual"
    assert [c.action for c in services.reconcile(at=now)] == ["delete-qos"]
    assert fake_sacctmgr.calls == []


def test_reconcile_warns_of_the_approaching_end_once(
    personas, make_priority, fake_sacctmgr, django_capture_on_commit_callbacks
):
    personas.owner.email = "owner@example.org"
    personas.owner.save()
    now = timezone.now()
    make_priority(qos_name="prio_w", status=Status.ACTIVE, start=now - timedelta(days=2, hours=12), applied_at=now)
    with django_capture_on_commit_callbacks(execute=True):
        services.reconcile(at=now)
        services.reconcile(at=now + timedelta(minutes=5))
    assert [m.subject for m in mail.outbox] == [
        f"[GPU priority] Priority #{PriorityRequest.objects.get().pk} ends soon"
    ]


def test_timeline_counts_reserved_gpus_per_type(personas, make_priority, settings):
    settings.PRIORITIES_CLUSTER_GPUS = ["a100=4"]
    now = timezone.now()
    make_priority(status=Status.ACTIVE, start=now, days=2, gpu_count=2)
    make_priority(status=Status.ACCEPTED, start=now + timedelta(days=1), days=2, gpu_count=1)
    make_priority(status=Status.REFUSED, start=now, days=2, gpu_count=3)
    data = services.timeline(personas.slurm.cluster, at=now)
    (series,) = data["series"]
    assert series["capacity"] == 4
    assert max(series["y"]) == 3
    assert services.timeline_summary(data) == [{"gpu_type": "a100", "peak": 3, "capacity": 4}]


def test_cluster_gpus_come_from_the_event_table(personas):
    event = personas.slurm.models.event
    with allow_writes():
        event.objects.create(time_start=100, time_end=0, node_name="", tres="1=16,1001=4,1002=2,1003=2", reason="r")
    assert services.cluster_gpus(personas.slurm.cluster) == {"a100": 2, "v100": 2}
