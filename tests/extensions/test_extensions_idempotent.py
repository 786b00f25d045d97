"""extensions' tasks run twice (a redelivered message): the second run changes nothing (tests/idempotency.py)."""

from __future__ import annotations

import pytest
from extensions_helpers import job_line
from idempotency import run_twice

from extensions import services
from extensions.models import ExtensionRequest, Status

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def owner(personas):
    personas.owner.email = "owner@example.org"
    personas.owner.save()
    return personas.owner


def ask(owner, job_id="501"):
    return services.create_request(job_id, hours=2, reason="slow solver", user=owner, cluster="testcluster")


def test_apply_runs_scontrol_update_once(fake_scontrol, owner, django_capture_on_commit_callbacks):
    extension = ask(owner)
    services.accept(extension, actor="staffer")  # on_commit not run: the task is the test's to run
    run_twice(
        "extensions.apply", django_capture_on_commit_callbacks, calls=fake_scontrol.updates, extension_id=extension.pk
    )
    assert ExtensionRequest.objects.get(pk=extension.pk).status == Status.APPLIED
    assert len(fake_scontrol.updates) == 1


def test_expire_expires_an_ended_jobs_request_once(fake_scontrol, owner, django_capture_on_commit_callbacks):
    fake_scontrol.jobs["502"] = job_line("502")
    running, ending = ask(owner), ask(owner, job_id="502")
    fake_scontrol.jobs["502"] = job_line("502", state="TIMEOUT")
    first, second = run_twice("extensions.expire", django_capture_on_commit_callbacks)
    assert (first, second) == ([ending.pk], [])
    assert ExtensionRequest.objects.get(pk=running.pk).status == Status.PENDING
