"""The job state machine (jobqueue.steps), node choice, reconciliation and the code scanner."""

from __future__ import annotations

from datetime import timedelta

import jobqueue_fake_executor as fake_executor
import pytest
from django.utils import timezone
from jobqueue_helpers import ML_CODE

from jobqueue import scanner, services, steps
from jobqueue.models import Job, JobStatus, Node
from jobqueue.submission import Submission

pytestmark = pytest.mark.django_db


def make_job(user, **kwargs):
    sub = Submission(
        code=ML_CODE, filename="s.py", competition_id="comp", project_id="p", expected_time=60, user_id=user.username
    )
    for key, value in kwargs.items():
        setattr(sub, key, value)
    return services.submit(user, sub)


def test_a_second_job_on_a_busy_node_waits_then_starts(alice, bob, settings):
    settings.JOBQUEUE_NODES = ["gpu-node-0=127.0.0.1:22"]
    first, second = make_job(alice), make_job(bob)
    second.refresh_from_db()
    assert second.status == JobStatus.PENDING
    assert not second.remote_id
    assert steps.advance(second.job_id) == settings.JOBQUEUE_POLL_SECONDS  # node busy: try later
    fake_executor.finish(first.job_id)
    steps.advance(first.job_id)
    second.refresh_from_db()
    assert second.status == JobStatus.RUNNING  # the finished job handed the node over
    assert Node.objects.get(name="gpu-node-0").current_job_id == second.pk


def test_the_node_is_handed_over_only_after_the_finished_job_is_released(alice, bob, settings, monkeypatch):
    """A disposable node restarts in release(): the next job must not start on it before that."""
    settings.JOBQUEUE_NODES = ["gpu-node-0=127.0.0.1:22"]
    first, second = make_job(alice), make_job(bob)
    seen = []

    def release(executor, job):
        seen.append((Node.objects.get(name="gpu-node-0").current_job_id, fake_executor.CALLS.copy()))

    monkeypatch.setattr(fake_executor.FakeExecutor, "release", release)
    fake_executor.finish(first.job_id)
    steps.advance(first.job_id)
    held_by, calls = seen[0]
    assert held_by == first.pk  # still the finished job's while it is released
    assert ("start", second.job_id) not in calls
    second.refresh_from_db()
    assert second.status == JobStatus.RUNNING


def test_a_disposable_node_that_was_not_reset_takes_no_next_job(alice, bob, settings, monkeypatch):
    """JOBQUEUE_LXC_RESTART: a failed reset keeps the node out of service (the next job waits), and
    jobqueue.reconcile frees it once a reset works."""
    from jobqueue import tasks
    from jobqueue.executors import ExecutorError

    settings.JOBQUEUE_NODES = ["gpu-node-0=127.0.0.1:22"]
    settings.JOBQUEUE_LXC_RESTART = True
    first, second = make_job(alice), make_job(bob)
    resets = {"work": False}

    def release(executor, job):
        if not resets["work"]:
            raise ExecutorError("restarting container gpu-node-0 failed: sudo: a password is required")

    monkeypatch.setattr(fake_executor.FakeExecutor, "release", release)
    fake_executor.finish(first.job_id)
    steps.advance(first.job_id)
    first.refresh_from_db()
    assert first.status == JobStatus.COMPLETED  # the job's own outcome stands
    assert Node.objects.get(name="gpu-node-0").current_job_id == first.pk  # out of service
    steps.advance(second.job_id)
    second.refresh_from_db()
    assert second.status == JobStatus.PENDING and not second.remote_id
    tasks.reconcile()  # the reset still fails: still held
    assert Node.objects.get(name="gpu-node-0").current_job_id == first.pk
    resets["work"] = True
    tasks.reconcile()
    second.refresh_from_db()
    assert second.status == JobStatus.RUNNING
    assert Node.objects.get(name="gpu-node-0").current_job_id == second.pk


def test_a_failed_exit_code_fails_the_job_with_a_reason(alice):
    job = make_job(alice)
    fake_executor.finish(job.job_id, exit_code=3)
    steps.advance(job.job_id)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.exit_code == 3
    assert "status 3" in job.error


def test_a_lost_job_fails_with_a_reason(alice):
    job = make_job(alice)
    fake_executor.REMOTE[job.job_id]["state"] = "lost"
    steps.advance(job.job_id)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED


def test_an_unreachable_node_is_retried_then_the_job_continues(alice):
    job = make_job(alice)
    fake_executor.DOWN["value"] = True
    assert steps.advance(job.job_id) is not None
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.unreachable_since is not None
    fake_executor.DOWN["value"] = False
    fake_executor.finish(job.job_id)
    steps.advance(job.job_id)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert job.output


def test_a_node_unreachable_for_too_long_fails_the_job(alice, settings):
    job = make_job(alice)
    fake_executor.DOWN["value"] = True
    Job.objects.filter(pk=job.pk).update(unreachable_since=timezone.now() - timedelta(hours=2))
    assert steps.advance(job.job_id) is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "unreachable" in job.error


def test_a_leased_job_is_not_advanced_twice(alice):
    job = make_job(alice)
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    fake_executor.finish(job.job_id)
    assert steps.advance(job.job_id) is None
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_reconcile_picks_up_jobs_whose_worker_died(alice):
    job = make_job(alice)
    fake_executor.finish(job.job_id)
    # the worker died mid-step: its lease ran out and nobody followed the job since
    Job.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1), heartbeat=timezone.now() - timedelta(minutes=10)
    )
    assert services.reconcile() == [job.job_id]
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED


def test_start_is_not_repeated_for_a_started_job(alice):
    job = make_job(alice)
    steps.advance(job.job_id)
    assert [call for call in fake_executor.CALLS if call[0] == "start"] == [("start", job.job_id)]


def test_cancel_of_a_waiting_job_never_starts_it(alice, bob, settings):
    settings.JOBQUEUE_NODES = ["gpu-node-0=127.0.0.1:22"]
    make_job(alice)
    waiting = make_job(bob)
    services.cancel(waiting)
    waiting.refresh_from_db()
    assert waiting.status == JobStatus.CANCELLED
    assert ("start", waiting.job_id) not in fake_executor.CALLS


@pytest.mark.parametrize(
    "code",
    [
        "eval('1')",
        "import os\nos.system('id')",
        "from os import system\nsystem('id')",
        "import os as o\no.fork()",
        "import shutil\nshutil.rmtree('/')",
        "import socket",
        "from urllib import request",
        "__import__('os')",
    ],
)
def test_scanner_rejects_dangerous_code(code):
    assert not scanner.static_scan(code).ok


def test_scanner_accepts_ml_code_without_warnings():
    result = scanner.static_scan("import torch\nimport os\nprint(os.getcwd(), torch.__version__)\n")
    assert result.ok
    assert not result.warnings


def test_llm_scan_is_off_by_default_and_a_down_endpoint_only_warns(settings):
    assert scanner.llm_scan("print(1)").warnings == []
    settings.JOBQUEUE_SCAN_LLM_URL = "http://127.0.0.1:9/v1"
    settings.JOBQUEUE_SCAN_LLM_TIMEOUT = 0.5
    result = scanner.llm_scan("print(1)")
    assert result.ok
    assert result.warnings
