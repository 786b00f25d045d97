"""The job queue's tasks run twice (a redelivered message): the second run changes nothing (tests/idempotency.py)."""

from __future__ import annotations

from datetime import timedelta

import jobqueue_fake_executor as fake_executor
import pytest
from django.utils import timezone
from idempotency import run_twice
from jobqueue_helpers import ML_CODE

from jobqueue import services, steps
from jobqueue.executors import ExecutorError
from jobqueue.models import Job, JobStatus, Node
from jobqueue.submission import Submission

pytestmark = pytest.mark.django_db


def submit(user):
    sub = Submission(
        code=ML_CODE, filename="s.py", competition_id="comp", project_id="p", expected_time=60, user_id=user.username
    )
    return services.submit(user, sub)  # the conftest runs its on-commit first step at once: the job runs


def test_advance_finishes_a_finished_job_once(alice, django_capture_on_commit_callbacks):
    job = submit(alice)
    fake_executor.finish(job.job_id)
    run_twice("jobqueue.advance", django_capture_on_commit_callbacks, calls=fake_executor.CALLS, job_id=job.job_id)
    assert Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED
    assert [call for call in fake_executor.CALLS if call[0] == "start"] == [("start", job.job_id)]


def test_reconcile_picks_up_a_job_whose_worker_died_once(alice, django_capture_on_commit_callbacks):
    job = submit(alice)
    fake_executor.finish(job.job_id)
    Job.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1), heartbeat=timezone.now() - timedelta(minutes=10)
    )
    first, second = run_twice("jobqueue.reconcile", django_capture_on_commit_callbacks, calls=fake_executor.CALLS)
    assert (first, second) == (1, 0)
    assert Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED


def failed_reset(executor, job):
    raise ExecutorError("restarting container gpu-node-0 failed")


def test_reconcile_resets_a_stuck_disposable_node_once(
    alice, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.JOBQUEUE_NODES = ["gpu-node-0=127.0.0.1:22"]
    settings.JOBQUEUE_LXC_RESTART = True
    job = submit(alice)
    fake_executor.finish(job.job_id)
    with monkeypatch.context() as patch:  # the reset fails: the node stays the finished job's
        patch.setattr(fake_executor.FakeExecutor, "release", failed_reset)
        steps.advance(job.job_id)
    assert Node.objects.get(name="gpu-node-0").current_job_id == job.pk
    run_twice("jobqueue.reconcile", django_capture_on_commit_callbacks, calls=fake_executor.CALLS)
    assert Node.objects.get(name="gpu-node-0").current_job_id is None
    assert [call for call in fake_executor.CALLS if call[0] == "release"] == [("release", job.job_id)]
