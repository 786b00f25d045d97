"""The job queue's logic around the state machine: who sees which job, nodes, submitting, cancelling, statistics.

Views, the API, tasks and commands call these functions. Submissions are checked in
jobqueue.submission; a job's steps run in jobqueue.steps (the Celery task jobqueue.advance).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Avg, Count, F, Q, QuerySet
from django.utils import timezone

from jobqueue import scanner
from jobqueue.executors import get_executor
from jobqueue.models import ACTIVE_STATUSES, FINAL_STATUSES, Job, JobStatus
from jobqueue.queueing import schedule
from jobqueue.submission import Submission, SubmissionError

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# --- who sees what ---------------------------------------------------------------------------


def jobs_visible_to(user: User, *, admin: bool) -> QuerySet[Job]:
    """The one "queued jobs this user may see" query: their own; every job for queue admins."""
    jobs = Job.objects.select_related("user")
    return jobs if admin else jobs.filter(user=user)


# --- nodes -----------------------------------------------------------------------------------


def node_names() -> list[str]:
    if not get_executor().uses_nodes:
        return []
    from jobqueue.executors.ssh import configured_nodes

    return list(configured_nodes())


def _remaining(job: Job, now: datetime) -> float:
    if job.status == JobStatus.RUNNING and job.started:
        return max(0.0, job.expected_time - (now - job.started).total_seconds())
    return float(job.expected_time)


def node_ids() -> dict[str, int]:
    """Each configured node's number (its place in JOBQUEUE_NODES, from 0): the seed's integer node_id."""
    return {name: index for index, name in enumerate(node_names())}


def node_statistics() -> list[dict[str, Any]]:
    """Per node: queue length, expected wait (remaining expected time of its jobs), current job.

    Under the seed server's names (`node_id` is the node's number, `queue_length`, `total_wait_time`,
    and the dashboard's `queue_size`, `queue_time_seconds`, `is_busy`, `current_job`), with the
    node's configured name as `node_name`.
    """
    now = timezone.now()
    names = node_names()
    active = Job.objects.filter(status__in=ACTIVE_STATUSES, node__in=names).select_related("user").order_by("created")
    stats: dict[str, dict[str, Any]] = {
        name: {
            "node_id": index,
            "node_name": name,
            "queue_length": 0,
            "total_wait_time": 0.0,
            "is_busy": False,
            "current_job": None,
        }
        for index, name in enumerate(names)
    }
    for job in active:
        entry = stats[job.node]
        entry["total_wait_time"] += _remaining(job, now)
        if job.status == JobStatus.RUNNING:
            entry["is_busy"] = True
            entry["current_job"] = {
                "job_id": job.job_id,
                "user_id": job.user.get_username(),
                "competition_id": job.competition_id,
            }
        else:
            entry["queue_length"] += 1
    for entry in stats.values():
        entry["total_wait_time"] = round(entry["total_wait_time"])
        entry["queue_size"] = entry["queue_length"]
        entry["queue_time_seconds"] = entry["total_wait_time"]
    return list(stats.values())


def choose_node() -> str:
    """The load balancing: the node with the least expected wait (ties: the first configured).

    The expected wait of a node is its `total_wait_time`: the remaining expected time of its
    running job plus the expected time of every job queued on it.
    """
    stats = node_statistics()
    if not stats:
        return ""
    return str(min(stats, key=lambda entry: (entry["total_wait_time"], entry["node_id"]))["node_name"])


# --- submission ------------------------------------------------------------------------------


def active_job_count(user: User) -> int:
    return Job.objects.filter(user=user, status__in=ACTIVE_STATUSES).count()


def submit(user: User, submission: Submission, *, admin: bool = False) -> Job:
    """Scan, check the active-job limit (409) and queue the job; its first step runs on commit."""
    result = scanner.scan(submission.code)
    if not result.ok:
        raise SubmissionError(400, {"code": result.problems})
    exempt = admin and settings.JOBQUEUE_ADMIN_EXEMPT
    with transaction.atomic():
        # Lock the user's row: two simultaneous submissions cannot both pass the limit.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        limit = settings.JOBQUEUE_MAX_ACTIVE_JOBS
        if not exempt and active_job_count(user) >= limit:
            raise SubmissionError(
                409,
                f"You already have {limit} active job(s): wait for it to finish or cancel it.",
            )
        executor = get_executor()
        job = Job.objects.create(
            user=user,
            competition_id=submission.competition_id,
            project_id=submission.project_id,
            expected_time=submission.expected_time,
            filename=submission.filename,
            code=submission.code,
            warnings=submission.warnings + result.warnings,
            executor=settings.JOBQUEUE_EXECUTOR,
            node=choose_node() if executor.uses_nodes else "",
        )
        transaction.on_commit(lambda: schedule(job.job_id))
    return job


def queue_position(job: Job) -> int:
    """Jobs ahead of `job` on its node (or in the whole queue for the slurm executor)."""
    if job.status != JobStatus.PENDING:
        return 0
    ahead = Job.objects.filter(status__in=ACTIVE_STATUSES, created__lt=job.created)
    if job.node:
        ahead = ahead.filter(node=job.node)
    return ahead.count()


def estimated_wait(job: Job) -> int:
    if job.status != JobStatus.PENDING or not job.node:
        return 0
    now = timezone.now()
    ahead = Job.objects.filter(status__in=ACTIVE_STATUSES, node=job.node, created__lt=job.created)
    return round(sum(_remaining(other, now) for other in ahead))


# --- cancel and reconcile --------------------------------------------------------------------


def cancel(job: Job) -> Job:
    """Cancel `job`: at once if it never started, else by the executor in the job's next step."""
    if job.status in FINAL_STATUSES:
        raise SubmissionError(409, f"The job is already {job.status}.")
    with transaction.atomic():
        never_started = Job.objects.filter(pk=job.pk, status=JobStatus.PENDING, remote_id="").update(
            cancel_requested=True
        )
        if not never_started:
            Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.refresh_from_db()
    transaction.on_commit(lambda: schedule(job.job_id))
    return job


def reconcile() -> list[str]:
    """Enqueue a step for every active job nobody follows (its worker died): returns their ids."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOBQUEUE_STALE_SECONDS)
    orphans = list(
        Job.objects.filter(status__in=ACTIVE_STATUSES)
        .filter(Q(heartbeat__isnull=True) | Q(heartbeat__lt=stale))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("job_id", flat=True)
    )
    for job_id in orphans:
        schedule(job_id)
    return orphans


# --- statistics ------------------------------------------------------------------------------


def _status_counts(jobs: QuerySet[Job]) -> dict[str, int]:
    counts = {status.value: 0 for status in JobStatus}
    for row in jobs.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts.values())
    return counts


def job_summary(job: Job, ids: dict[str, int] | None = None) -> dict[str, Any]:
    """A job under the seed's names: `node_id` is its node's number (None: no node, or one no
    longer configured), `node_name` the node's name. Pass `ids` (node_ids()) when summing up many."""
    ids = node_ids() if ids is None else ids
    return {
        **job.identity(),
        "node_id": ids.get(job.node) if job.node else None,
        "node_name": job.node or None,
        "created_at": job.created.isoformat(),
        "started_at": job.started.isoformat() if job.started else None,
        "completed_at": job.finished.isoformat() if job.finished else None,
        "expected_time": job.expected_time,
        "exit_code": job.exit_code,
    }


QUEUE_FIELDS = ("node_id", "node_name", "queue_size", "queue_time_seconds", "is_busy", "current_job")


def dashboard(*, recent: int = 20) -> dict[str, Any]:
    """The admin dashboard's figures (the seed server's /api/dashboard), in a fixed number of queries."""
    now = timezone.now()
    jobs = Job.objects.all()
    per_user: dict[str, dict[str, int]] = {}
    for row in jobs.values("user__username", "status").annotate(n=Count("id")):
        entry = per_user.setdefault(row["user__username"], {s.value: 0 for s in JobStatus} | {"total": 0})
        entry[row["status"]] = row["n"]
        entry["total"] += row["n"]
    nodes = node_statistics()
    finished = jobs.filter(status__in=(JobStatus.COMPLETED, JobStatus.FAILED))
    done = finished.aggregate(
        n=Count("id"),
        ok=Count("id", filter=Q(status=JobStatus.COMPLETED)),
        wait=Avg(F("started") - F("created"), filter=Q(started__isnull=False)),
    )
    wait = done["wait"]
    busy = sum(1 for node in nodes if node["is_busy"])
    active = list(jobs.filter(status__in=ACTIVE_STATUSES).select_related("user").order_by("created"))
    ids = {entry["node_name"]: entry["node_id"] for entry in nodes}
    # Always numbers, as the seed's (0.0 when there is nothing to measure yet: no node, no finished job).
    return {
        "timestamp": now.isoformat(),
        "job_statistics": _status_counts(jobs),
        "user_statistics": per_user,
        "node_statistics": nodes,
        "queue_information": [{key: entry[key] for key in QUEUE_FIELDS} for entry in nodes],
        "active_jobs": [job_summary(job, ids) for job in active],
        "recent_jobs": [job_summary(job, ids) for job in jobs.select_related("user").order_by("-created")[:recent]],
        "health_metrics": {
            "node_utilization_percent": round(100.0 * busy / len(nodes), 1) if nodes else 0.0,
            "average_queue_time_seconds": round(wait.total_seconds(), 1) if wait is not None else 0.0,
            "total_active_jobs": len(active),
            "success_rate_percent": round(100.0 * done["ok"] / done["n"], 1) if done["n"] else 0.0,
            "jobs_last_24h": jobs.filter(created__gte=now - timedelta(hours=24)).count(),
        },
    }
