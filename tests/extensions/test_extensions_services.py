"""extensions.services against a fake scontrol: the policy, decisions, Slurm's update, mail, audit, expiry."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import transaction
from extensions_helpers import job_line

from extensions import services
from extensions.models import ExtensionRequest, Status
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def owner(personas):
    personas.owner.email = "owner@example.org"
    personas.owner.save()
    personas.staff.email = "staff@example.org"
    personas.staff.save()
    return personas.owner


def ask(owner, hours=2, job_id="501", reason="the solver converges slowly"):
    return services.create_request(job_id, hours=hours, reason=reason, user=owner, cluster="testcluster")


def actions():
    return list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))


def test_the_owner_asks_and_the_staff_are_mailed(fake_scontrol, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        extension = ask(owner)
    assert (extension.status, extension.hours, extension.limit_before) == (Status.PENDING, 2, 60)
    assert (extension.account, extension.partition) == ("def-owner", "cpu")
    assert [m.to for m in mail.outbox] == [["staff@example.org"]]
    assert "501" in mail.outbox[0].subject
    assert actions() == ["extension.request"]
    assert fake_scontrol.updates == []


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (None, "has ended"),
        (job_line(state="COMPLETED"), "has ended"),
        (job_line(user="member"), "owner may ask"),
        (job_line(limit="UNLIMITED"), "no time limit"),
    ],
)
def test_what_cannot_be_extended(fake_scontrol, owner, job, message):
    fake_scontrol.jobs = {"501": job} if job else {}
    with pytest.raises(ValidationError, match=message):
        ask(owner)
    assert not ExtensionRequest.objects.exists()


def test_the_policy_bounds_one_request_and_the_total(fake_scontrol, owner, settings):
    settings.EXTENSIONS_MAX_HOURS = 4
    settings.EXTENSIONS_MAX_TOTAL_HOURS = 6
    with pytest.raises(ValidationError) as exc:
        ask(owner, hours=5)
    assert "hours" in exc.value.message_dict
    first = ask(owner, hours=4)
    with pytest.raises(ValidationError, match="already has a request"):
        ask(owner, hours=1)
    first.status = Status.APPLIED
    first.save()
    with pytest.raises(ValidationError, match="6 hours in all"):
        ask(owner, hours=3)
    assert ask(owner, hours=2).status == Status.PENDING


def test_who_may_ask(fake_scontrol, owner, settings):
    settings.EXTENSIONS_ALLOWED_ACCOUNTS = ["def-other"]
    with pytest.raises(ValidationError, match="not offered"):
        ask(owner)
    settings.EXTENSIONS_ALLOWED_USERS = ["owner"]
    assert ask(owner).pk


def test_accepting_runs_scontrol_update_as_the_operator(
    fake_scontrol, owner, personas, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    extension = ask(owner, hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(extension, actor="staffer", message="fine")
    extension.refresh_from_db()
    assert extension.status == Status.APPLIED and extension.new_limit == 180
    assert fake_scontrol.updates == [(["scontrol", "update", "JobId=501", "TimeLimit=03:00:00"], "slurm")]
    assert [m.to for m in mail.outbox] == [["owner@example.org"]]
    assert "03:00:00" in mail.outbox[0].body and "fine" in mail.outbox[0].body
    assert actions() == ["extension.request", "extension.accept", "extension.applied"]


def test_not_root_runs_scontrol_as_itself(fake_scontrol, owner, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr("os.geteuid", lambda: 33)
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(ask(owner), actor="staffer")
    assert fake_scontrol.updates[0][1] is None


def test_a_refused_update_is_kept_and_retried(fake_scontrol, owner, django_capture_on_commit_callbacks):
    fake_scontrol.fail_update = "slurm_update error: Access/permission denied\n"
    extension = ask(owner)
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(extension, actor="staffer")
    extension.refresh_from_db()
    assert extension.status == Status.ACCEPTED and "permission denied" in extension.error
    assert AuditEntry.objects.get(action="extension.apply_failed").status == "failed"
    fake_scontrol.fail_update = ""
    with django_capture_on_commit_callbacks(execute=True):
        services.retry(extension, actor="staffer")
    extension.refresh_from_db()
    assert (extension.status, extension.error) == (Status.APPLIED, "")
    assert len(fake_scontrol.updates) == 2


def test_refusing_needs_a_message_and_mails_the_user(fake_scontrol, owner, django_capture_on_commit_callbacks):
    extension = ask(owner)
    with pytest.raises(ValidationError):
        services.refuse(extension, actor="staffer", message="  ")
    with django_capture_on_commit_callbacks(execute=True):
        services.refuse(extension, actor="staffer", message="The partition is reserved tomorrow.")
    assert extension.status == Status.REFUSED
    assert [m.to for m in mail.outbox] == [["owner@example.org"]]
    assert "reserved tomorrow" in mail.outbox[0].body
    with pytest.raises(ValidationError):
        services.accept(extension, actor="staffer")
    assert fake_scontrol.updates == []


def test_accepting_a_job_that_ended_expires_the_request(fake_scontrol, owner):
    extension = ask(owner)
    fake_scontrol.jobs = {}
    with pytest.raises(ValidationError, match="ended"):
        services.accept(extension, actor="staffer")
    extension.refresh_from_db()
    assert extension.status == Status.EXPIRED and fake_scontrol.updates == []


def test_small_requests_are_accepted_alone_unless_the_nodes_are_reserved(
    fake_scontrol, owner, settings, django_capture_on_commit_callbacks
):
    settings.EXTENSIONS_AUTO_ACCEPT_HOURS = 2
    fake_scontrol.reservations = (
        "ReservationName=maint StartTime=2099-01-01T00:00:00 EndTime=2099-01-02T00:00:00 Duration=1-00:00:00 "
        "Nodes=node02 NodeCnt=1 Flags=MAINT State=INACTIVE"
    )
    with django_capture_on_commit_callbacks(execute=True):
        far = ask(owner, hours=1)  # the reservation starts long after the job would end
    far.refresh_from_db()
    assert far.status == Status.APPLIED and far.automatic and far.decided_by == services.AUTOMATIC_ACTOR
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@example.org"]  # no staff mail
    fake_scontrol.reservations = fake_scontrol.reservations.replace("2099-01-01T00:00:00", "2000-01-01T00:00:00")
    near = ask(owner, hours=1)
    assert near.status == Status.PENDING and not near.automatic
    near.status = Status.REFUSED
    near.save()
    assert ask(owner, hours=3).status == Status.PENDING  # above the threshold


def test_no_automatic_acceptance_past_the_partitions_maximum(fake_scontrol, owner, settings):
    settings.EXTENSIONS_AUTO_ACCEPT_HOURS = 2
    fake_scontrol.partition = fake_scontrol.partition.replace("MaxTime=2-00:00:00", "MaxTime=01:30:00")
    assert ask(owner, hours=1).status == Status.PENDING


def test_open_requests_of_ended_jobs_expire(fake_scontrol, owner):
    fake_scontrol.jobs["502"] = job_line("502")
    running, ending = ask(owner), ask(owner, job_id="502")
    fake_scontrol.jobs["502"] = job_line("502", state="TIMEOUT")
    assert services.expire_ended() == [ending.pk]
    fake_scontrol.jobs = {}
    assert services.expire_ended() == [running.pk]
    assert ExtensionRequest.objects.filter(status=Status.EXPIRED).count() == 2
    assert actions().count("extension.expire") == 2


def test_expiry_waits_while_slurmctld_is_down(fake_scontrol, owner):
    extension = ask(owner)
    fake_scontrol.down = True
    assert services.expire_ended() == []
    extension.refresh_from_db()
    assert extension.status == Status.PENDING


def test_of_two_decisions_at_once_only_the_first_counts(fake_scontrol, owner, django_capture_on_commit_callbacks):
    """Two staff pages loaded while the request was pending: Accept on one, Refuse (or Accept again) on the other."""
    extension = ask(owner)
    first, second, third = (ExtensionRequest.objects.get(pk=extension.pk) for _ in range(3))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.accept(first, actor="staffer")
        with pytest.raises(ValidationError, match="pending"):
            services.refuse(second, actor="other", message="no")
        with pytest.raises(ValidationError, match="pending"):
            services.accept(third, actor="other")
    assert second.status == third.status == Status.ACCEPTED  # the loser sees the winner's decision
    assert [m.to for m in mail.outbox] == [["owner@example.org"]] and "accepted" in mail.outbox[0].subject.lower()
    assert len(fake_scontrol.updates) == 1
    assert len([c for c in callbacks if getattr(c, "func", None) is not None and c.func.__name__ == "enqueue"]) == 1
    assert actions() == ["extension.request", "extension.accept", "extension.applied"]
    extension.refresh_from_db()
    assert (extension.status, extension.decided_by) == (Status.APPLIED, "staffer")


def test_a_refusal_first_stops_a_late_acceptance(fake_scontrol, owner, django_capture_on_commit_callbacks):
    extension = ask(owner)
    stale = ExtensionRequest.objects.get(pk=extension.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.refuse(extension, actor="staffer", message="no")
        with pytest.raises(ValidationError, match="pending"):
            services.accept(stale, actor="other")
    assert fake_scontrol.updates == [] and len(mail.outbox) == 1
    assert actions() == ["extension.request", "extension.refuse"]
    stale_expiry = ExtensionRequest.objects.get(pk=extension.pk)
    stale_expiry.status = Status.PENDING  # what a page loaded earlier holds
    services.expire(stale_expiry)
    extension.refresh_from_db()
    assert extension.status == Status.REFUSED and "extension.expire" not in actions()


def test_an_apply_task_run_twice_applies_once(fake_scontrol, owner):
    extension = ask(owner)
    with transaction.atomic():
        services.accept(extension, actor="staffer")
    copies = [ExtensionRequest.objects.get(pk=extension.pk) for _ in range(2)]
    assert [services.apply(copy) for copy in copies] == [True, False]
    assert actions().count("extension.applied") == 1


def test_every_scontrol_call_names_the_request_s_cluster(
    fake_scontrol, owner, settings, django_capture_on_commit_callbacks
):
    settings.EXTENSIONS_AUTO_ACCEPT_HOURS = 0
    extension = services.create_request("501", hours=2, reason="r", user=owner, cluster="other")
    assert extension.cluster == "other"
    with django_capture_on_commit_callbacks(execute=True):
        services.accept(extension, actor="staffer")
    fake_scontrol.jobs = {}
    services.expire_ended()
    fake_scontrol.jobs = {"501": job_line()}
    settings.EXTENSIONS_AUTO_ACCEPT_HOURS = 24
    services.create_request("501", hours=2, reason="r", user=owner, cluster="other")  # job, partition, reservations
    assert len(fake_scontrol.clusters) >= 6 and set(fake_scontrol.clusters) == {"other"}
    assert fake_scontrol.updates[0][0][1] == "update"


def test_a_cluster_name_is_no_option(fake_scontrol):
    from slurm import scontrol

    for bad in ("-v", "a b", "", "x;y"):
        with pytest.raises(ValueError, match="not a cluster name"):
            scontrol.job("501", cluster=bad)
    assert fake_scontrol.clusters == []
