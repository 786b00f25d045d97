"""GPU priorities against the real stack: sacctmgr, slurmdbd, a real job under the QOS, real mail.

Each run uses its own QOS name and deletes it at the end, whatever happens. Time is moved
forward by passing `at=` to the reconciler, as the beat task would see it days later.
"""

from __future__ import annotations

import email
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from priorities import services
from priorities.models import PriorityRequest, Status
from priorities.policy import RequestData
from priorities.reconciler import reconcile
from slurm import sacctmgr
from slurm.models import Qos, Tres

# transaction=True: every read of slurmdbd sees what sacctmgr just committed (no snapshot).
pytestmark = pytest.mark.django_db(databases=["default", "slurm"], transaction=True)

ACCOUNT = "physics"


@pytest.fixture
def qos_name(stack_dir):
    name = f"prio_it_{os.getpid()}_{int(time.time())}"
    yield name
    subprocess.run(["sacctmgr", "-i", "delete", "qos", name], capture_output=True, timeout=30, check=False)


@pytest.fixture
def live(settings, stack_dir):
    settings.PRIORITIES_APPLY_MODE = "automatic"
    settings.SLURM_CLUSTERS = [os.environ.get("SLURM_CLUSTERS", "testcluster").split(",")[0]]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # the stack's aiosmtpd
    sacctmgr.get_client.cache_clear()
    yield
    sacctmgr.get_client.cache_clear()


def assoc_qos(user: str) -> list[str]:
    argv = ["sacctmgr", "-P", "-n", "show", "assoc", "where", f"user={user}", f"account={ACCOUNT}", "format=qos"]
    result = subprocess.run(
        argv,
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return [q for line in result.stdout.split() for q in line.split(",") if q]


def mails_about(pk: int, since: float) -> list[str]:
    maildir = Path(os.environ["PORTAL_STACK_MAILDIR"]) / "new"
    subjects = []
    for path in maildir.iterdir():
        if path.stat().st_mtime >= since - 1:
            message = email.message_from_bytes(path.read_bytes())
            subject = str(email.header.make_header(email.header.decode_header(message["Subject"] or "")))
            if f"#{pk}" in subject:
                subjects.append(subject)
    return subjects


def settings_cluster() -> str:
    from django.conf import settings

    return str(settings.SLURM_CLUSTERS[0])


def wait_for(predicate, timeout=90.0, step=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def test_accepted_priority_is_applied_used_repaired_and_expired(live, qos_name, slurm_cmd):
    started = time.time()
    User = get_user_model()
    alice = User.objects.create_user("alice", email="alice@example.org")
    User.objects.create_user("bob", email="bob@example.org")
    User.objects.create_user("staffer", email="staff@example.org", is_staff=True)
    cluster = settings_cluster()
    now = timezone.now()
    request = RequestData(
        account=ACCOUNT, gpu_type="a100", gpu_count=1, start=now, duration_days=2,
        justification="integration test", ticket="1", users=["bob"],
    )  # fmt: skip

    # Policy violations are refused with the field and the reason.
    with pytest.raises(ValidationError) as info:
        services.create_request(
            RequestData(**{**request.__dict__, "duration_days": 30, "gpu_count": 99}),
            user=alice, cluster=cluster,
        )  # fmt: skip
    assert set(info.value.message_dict) == {"duration_days", "gpu_count"}

    priority = services.create_request(request, user=alice, cluster=cluster)
    for bad in ("bad name", "x;id", "-i", "normal"):  # "normal" exists in Slurm already
        with pytest.raises(ValidationError):
            services.accept(priority, qos_name=bad, actor="staffer")

    services.accept(priority, qos_name=qos_name, actor="staffer")
    reconcile(at=now + timedelta(seconds=1))  # the beat task (the eager start task already ran)
    priority.refresh_from_db()
    assert priority.status == Status.ACTIVE

    # slurmdbd has the QOS with the right limits, and both users' associations list it.
    qos = Qos.objects.get(name=qos_name, deleted=0)
    a100 = Tres.catalog().id_of("gres", "gpu:a100")
    assert qos.grp_tres == f"{a100}=1"
    assert qos.max_wall_duration_per_job == 2 * 24 * 60
    assert qos.priority == 1000
    assert qos_name in assoc_qos("alice")
    assert qos_name in assoc_qos("bob")

    # slurmctld learns new QOS from slurmdbd asynchronously: a job submitted before it knows the
    # QOS's id is recorded with id_qos 0. Wait until its association manager shows the QOS.
    assert wait_for(
        lambda: (
            f"QOS={qos_name}({qos.id})"
            in slurm_cmd(["scontrol", "show", "assoc_mgr", "flags=qos", f"qos={qos_name}"]).stdout
        )
    )

    # A job submitted with --qos runs under it.
    job_id = slurm_cmd(
        ["sbatch", "--parsable", f"--qos={qos_name}", f"--account={ACCOUNT}", "--partition=gpu",
         "--gres=gpu:a100:1", "--time=00:02:00", "--chdir=/tmp", "--output=/dev/null", "--wrap=sleep 1"],
        user="alice",
    ).stdout.strip().split(";")[0]  # fmt: skip

    def finished():
        out = slurm_cmd(["sacct", "-X", "-n", "-P", "-j", job_id, "--format=QOS,State"]).stdout.strip()
        return out if out and out.split("|")[1] in ("COMPLETED", "FAILED", "CANCELLED") else None

    qos_used, state = (wait_for(finished) or "|").split("|")[:2]
    assert state == "COMPLETED"

    # The job's accounting record points at the QOS. slurmdbd may first record a job this short
    # with QOS id 0 (sacct: "Unknown") and fill the QOS in with a later update: wait for it.
    def recorded_qos() -> bool:
        raw = slurm_cmd(["sacct", "-X", "-n", "-P", "-j", job_id, "--format=QOSRAW"]).stdout.strip()
        return raw == str(qos.id)

    assert wait_for(recorded_qos, timeout=60)
    assert qos_used in (qos_name, "Unknown")

    # Deleted by hand during its validity: the reconciler restores it, with its users.
    subprocess.run(["sacctmgr", "-i", "delete", "qos", qos_name], check=True, capture_output=True, timeout=30)
    assert not Qos.objects.filter(name=qos_name, deleted=0).exists()
    changes = reconcile(at=timezone.now())
    assert "create-qos" in [c.action for c in changes]
    assert Qos.objects.filter(name=qos_name, deleted=0).exists()
    assert qos_name in assoc_qos("alice")
    assert qos_name in assoc_qos("bob")

    # Two days later: expired, the QOS is gone and no association lists it.
    reconcile(at=priority.end + timedelta(minutes=1))
    priority.refresh_from_db()
    assert priority.status == Status.EXPIRED
    assert priority.removed_at
    assert not Qos.objects.filter(name=qos_name, deleted=0).exists()  # a QOS jobs used is soft-deleted
    assert qos_name not in assoc_qos("alice")
    assert qos_name not in assoc_qos("bob")
    assert qos_name not in sacctmgr.get_client().qos_names()

    # The mails went through the real SMTP server (staff: new request; users: accepted, started).
    subjects = wait_for(
        lambda: len(mails_about(priority.pk, started)) >= 3 and mails_about(priority.pk, started), 20, 1
    )
    assert subjects, "no mail about the request reached the stack's Maildir"
    joined = " | ".join(subjects)
    assert "New request" in joined
    assert "accepted" in joined
    assert "is active" in joined
    assert PriorityRequest.objects.filter(pk=priority.pk).exists()


@pytest.fixture
def second_qos_name(qos_name):
    name = f"{qos_name}_b"
    yield name
    subprocess.run(["sacctmgr", "-i", "delete", "qos", name], capture_output=True, timeout=30, check=False)


def test_a_user_without_association_does_not_stop_other_priorities_from_expiring(live, qos_name, second_qos_name):
    """carol has no association with physics: sacctmgr answers "Nothing modified" for her, every run.

    The priority that ends meanwhile is still expired and its QOS deleted; the failure is recorded
    on the request and mailed to staff.
    """
    started = time.time()
    User = get_user_model()
    alice = User.objects.create_user("alice", email="alice@example.org")
    User.objects.create_user("carol", email="carol@example.org")
    User.objects.create_user("staffer", email="staff@example.org", is_staff=True)
    cluster = settings_cluster()
    now = timezone.now()
    common = {"requester": alice, "cluster": cluster, "account": ACCOUNT, "gpu_type": "a100", "gpu_count": 1}
    ending = PriorityRequest.objects.create(
        **common, start=now, duration_days=1, qos_name=second_qos_name, status=Status.ACCEPTED,
        justification="integration test", ticket="1",
    )  # fmt: skip
    reconcile(at=now + timedelta(seconds=1))
    ending.refresh_from_db()
    assert ending.status == Status.ACTIVE
    assert second_qos_name in assoc_qos("alice")

    # Accepted before carol lost her association with physics (she has none on the stack).
    broken = PriorityRequest.objects.create(
        **common, start=now, duration_days=3, qos_name=qos_name, status=Status.ACCEPTED,
        justification="integration test", ticket="2",
    )  # fmt: skip
    broken.members.create(username="carol")

    changes = reconcile(at=ending.end + timedelta(minutes=1))
    ending.refresh_from_db()
    assert ending.status == Status.EXPIRED
    assert ending.removed_at
    assert not Qos.objects.filter(name=second_qos_name, deleted=0).exists()
    assert second_qos_name not in assoc_qos("alice")

    broken.refresh_from_db()
    assert (broken.pk, "failed") in [(c.priority_id, c.action) for c in changes]
    assert "carol has no association with account physics" in broken.sync_error
    assert broken.status == Status.ACTIVE  # alice has it; carol is retried on every run
    assert qos_name in assoc_qos("alice")
    subjects = wait_for(lambda: mails_about(broken.pk, started), 20, 1)
    assert any("Slurm could not be updated" in s for s in subjects), subjects


def test_manual_mode_keeps_an_ended_priority_pending_until_slurm_has_no_qos(live, settings, qos_name):
    """Manual mode: staff run the commands the panel shows; the reconciler sees them in slurmdbd."""
    from priorities.qos import commands

    settings.PRIORITIES_APPLY_MODE = "manual"
    started = time.time()
    User = get_user_model()
    alice = User.objects.create_user("alice", email="alice@example.org")
    User.objects.create_user("staffer", email="staff@example.org", is_staff=True)
    now = timezone.now()
    priority = PriorityRequest.objects.create(
        requester=alice, cluster=settings_cluster(), account=ACCOUNT, gpu_type="a100", gpu_count=1,
        start=now, duration_days=1, qos_name=qos_name, status=Status.ACCEPTED, justification="manual", ticket="3",
    )  # fmt: skip
    for line in commands(priority)["apply"]:
        subprocess.run(["sacctmgr", "-i", *line.split()[1:]], check=True, capture_output=True, timeout=30)
    services.mark_applied(priority, actor="staffer")
    assert qos_name in assoc_qos("alice")

    reconcile(at=priority.end + timedelta(minutes=1))
    priority.refresh_from_db()
    assert (priority.status, priority.removal_pending) == (Status.EXPIRED, True)
    assert qos_name in assoc_qos("alice")  # nobody removed it yet
    assert priority in services.staff_search({})
    subjects = wait_for(lambda: mails_about(priority.pk, started), 20, 1)
    assert any("Remove priority" in s for s in subjects), subjects

    for line in commands(priority)["remove"]:
        subprocess.run(["sacctmgr", "-i", *line.split()[1:]], check=True, capture_output=True, timeout=30)
    changes = reconcile(at=priority.end + timedelta(minutes=6))
    assert (priority.pk, "removal-confirmed") in [(c.priority_id, c.action) for c in changes]
    priority.refresh_from_db()
    assert priority.removed_at and not priority.removal_pending
    assert priority not in services.staff_search({})
