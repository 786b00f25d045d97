"""The job state machine: one `advance()` step at a time, driven by the Celery task jobqueue.advance.

A job moves pending → running → completed / failed / cancelled. Each step holds the job's lease,
so two workers never drive one job, and any worker can pick a job up where a dead one left it
(its handle is in the database, its state on the node). Executors (jobqueue.executors) do the
remote work; a finished job's record is written to JOBQUEUE_DIR/results.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobqueue.executors import Executor, ExecutorError, ExecutorUnavailable, get_executor, time_limit
from jobqueue.models import ACTIVE_STATUSES, Job, JobStatus, Node
from jobqueue.queueing import schedule
from jobqueue.services import node_ids

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # longer than one step can take (ssh retries included)
TIME_LIMIT_GRACE = timedelta(seconds=120)


def advance(job_id: str) -> float | None:
    """One step of a job; the seconds until its next step, or None when nothing is left to do.

    Safe to run twice and concurrently: without the job's lease a step does nothing.
    """
    now = timezone.now()
    taken = (
        Job.objects.filter(job_id=job_id, status__in=ACTIVE_STATUSES)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE, heartbeat=now)
    )
    if not taken:
        return None
    job = Job.objects.select_related("user").get(job_id=job_id)
    try:
        return _step(job)
    finally:
        Job.objects.filter(pk=job.pk).update(lease_until=None)


def _poll_delay(job: Job) -> float:
    base = float(settings.JOBQUEUE_POLL_SECONDS)
    if job.unreachable_since is None:
        return base
    # exponential back-off while the node or Slurm does not answer
    elapsed = (timezone.now() - job.unreachable_since).total_seconds()
    return min(base * 8, max(base, elapsed / 2))


def _step(job: Job) -> float | None:
    executor = get_executor(job.executor)
    try:
        if not job.remote_id:
            return _start(job, executor)
        return _follow(job, executor)
    except ExecutorUnavailable as exc:
        now = timezone.now()
        since = job.unreachable_since or now
        Job.objects.filter(pk=job.pk).update(unreachable_since=since)
        job.unreachable_since = since
        if (now - since).total_seconds() > settings.JOBQUEUE_UNREACHABLE_SECONDS:
            _finish(job, JobStatus.FAILED, error=f"the executor was unreachable for too long: {exc}")
            return None
        logger.warning("job %s: executor unavailable (%s); trying again later", job.job_id, exc)
        return _poll_delay(job)
    except ExecutorError as exc:
        _finish(job, JobStatus.FAILED, error=str(exc))
        return None


def _claim_node(job: Job) -> bool:
    """Make `job` its node's current job if the node is free and no older job waits for it."""
    with transaction.atomic():
        node, _created = Node.objects.get_or_create(name=job.node)
        node = Node.objects.select_for_update().get(pk=node.pk)
        if node.current_job_id == job.pk:
            return True
        if node.current_job_id is not None:
            current = Job.objects.filter(pk=node.current_job_id).values_list("status", flat=True).first()
            if current in ACTIVE_STATUSES or settings.JOBQUEUE_LXC_RESTART:
                return False  # a disposable node held by a finished job was not reset: release_stuck_nodes
        older = Job.objects.filter(
            node=job.node, status=JobStatus.PENDING, remote_id="", cancel_requested=False, created__lt=job.created
        ).exists()
        if older:
            return False
        node.current_job = job
        node.save(update_fields=["current_job"])
        return True


def _release_node(job: Job) -> None:
    if not job.node:
        return
    Node.objects.filter(name=job.node, current_job=job).update(current_job=None)
    following = Job.objects.filter(node=job.node, status=JobStatus.PENDING, remote_id="").order_by("created").first()
    if following is not None:
        transaction.on_commit(lambda: schedule(following.job_id))


def _start(job: Job, executor: Executor) -> float | None:
    if job.cancel_requested:
        _finish(job, JobStatus.CANCELLED, error="cancelled before it started")
        return None
    if executor.uses_nodes and not _claim_node(job):
        return float(settings.JOBQUEUE_POLL_SECONDS)
    remote_id = executor.start(job, node=job.node)
    now = timezone.now()
    job.remote_id = remote_id
    job.unreachable_since = None
    fields = ["remote_id", "unreachable_since"]
    if executor.uses_nodes:
        job.status, job.started = JobStatus.RUNNING, now
        fields += ["status", "started"]
    job.save(update_fields=fields)
    return float(settings.JOBQUEUE_POLL_SECONDS)


def _follow(job: Job, executor: Executor) -> float | None:
    if job.cancel_requested:
        executor.cancel(job)
    poll = executor.poll(job)
    now = timezone.now()
    if job.unreachable_since is not None:
        job.unreachable_since = None
        Job.objects.filter(pk=job.pk).update(unreachable_since=None)
    if poll.state in ("pending", "running"):
        if poll.state == "running" and job.status != JobStatus.RUNNING:
            job.status, job.started = JobStatus.RUNNING, job.started or now
            job.save(update_fields=["status", "started"])
        if job.started and now - job.started > timedelta(seconds=time_limit(job)) + TIME_LIMIT_GRACE:
            logger.warning("job %s outlived its time limit: cancelling it", job.job_id)
            executor.cancel(job)
        return float(settings.JOBQUEUE_POLL_SECONDS)
    output = executor.collect(job)
    job.output, job.stderr = output.stdout, output.stderr
    job.exit_code = poll.exit_code
    if job.cancel_requested:
        status = JobStatus.CANCELLED
    elif poll.state == "done" and poll.exit_code == 0:
        status = JobStatus.COMPLETED
    else:
        status = JobStatus.FAILED
    error = poll.reason
    if status == JobStatus.FAILED and not error:
        error = f"the code exited with status {poll.exit_code}"
    _finish(job, status, error=error, free_node=False)
    release(job, executor)
    return None


def release(job: Job, executor: Executor) -> bool:
    """Clean up after a finished job, then hand its node over; whether the node was handed over.

    The node stays the job's while it is released: a disposable node (JOBQUEUE_LXC_RESTART)
    restarts before the next job. If it could not be reset, the node stays the finished job's,
    out of service, until release_stuck_nodes() (jobqueue.reconcile) manages it.
    """
    try:
        executor.release(job)
    except (ExecutorUnavailable, ExecutorError, OSError) as exc:
        if settings.JOBQUEUE_LXC_RESTART and executor.uses_nodes:
            logger.error("job %s: node %s not reset, kept out of service: %s", job.job_id, job.node, exc)
            return False
        logger.warning("job %s: cleaning up after it failed: %s", job.job_id, exc)
    with transaction.atomic():
        _release_node(job)
    return True


def release_stuck_nodes() -> list[str]:
    """Release again each node still held by a finished job (a reset that failed): the nodes freed."""
    executor = get_executor()
    freed = []
    for node in Node.objects.filter(current_job__isnull=False).exclude(current_job__status__in=ACTIVE_STATUSES):
        job = node.current_job
        if job is not None and release(job, executor):
            freed.append(node.name)
    return freed


def _finish(job: Job, status: str, *, error: str = "", free_node: bool = True) -> None:
    now = timezone.now()
    job.status, job.finished = status, now
    job.error = error or job.error
    job.started = job.started or (now if job.remote_id else None)
    with transaction.atomic():
        job.save(update_fields=["status", "finished", "error", "started", "output", "stderr", "exit_code"])
        if free_node:
            _release_node(job)
    try:
        job.result_file = str(write_results(job))
        Job.objects.filter(pk=job.pk).update(result_file=job.result_file)
    except OSError as exc:
        logger.error("job %s: cannot write its results file: %s", job.job_id, exc)


def results_record(job: Job) -> dict[str, Any]:
    """/jobqueue/api/results and the results file: `node_id` is the node's number as in submit, status,
    jobs and the dashboard (services.node_ids(); None for no node or one no longer configured), with
    `node_name` its name."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        **job.identity(),
        "exit_code": job.exit_code,
        "node_id": node_ids().get(job.node) if job.node else None,
        "node_name": job.node or None,
        "executor": job.executor,
        "submitted_at": iso(job.created),
        "started_at": iso(job.started),
        "completed_at": iso(job.finished),
        "output": job.output,
        "error_output": job.stderr,
        "error": job.error or None,
        "warnings": job.warnings,
    }


def write_results(job: Job) -> Path:
    """JOBQUEUE_DIR/results/{user}_{competition}_{time}.jsonl, the seed server's naming.

    The file holds a user's code output: mode 0640 in a 0750 directory, set explicitly rather than
    left to the worker's umask (often 022: readable by every local account).
    """
    directory = Path(settings.JOBQUEUE_DIR) / "results"
    directory.mkdir(mode=0o750, parents=True, exist_ok=True)
    stamp = (job.finished or timezone.now()).strftime("%Y%m%d_%H%M%S")
    base = f"{job.user.get_username()}_{job.competition_id}_{stamp}"
    path = directory / f"{base}.jsonl"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        path = directory / f"{base}_{job.job_id[:8]}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        os.fchmod(fd, 0o640)  # it may exist from an earlier write with another mode
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(results_record(job), ensure_ascii=False) + "\n")
    return path
