"""The job queue's logic: validation and limits, submission, the job state machine, statistics.

Views, tasks and commands call these functions; executors (jobqueue.executors) do the remote
work. A job moves pending → running → completed / failed / cancelled, one `advance()` step at a
time; each step holds the job's lease, so two workers never drive one job, and any worker can
pick a job up where a dead one left it (its handle is in the database, its state on the node).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Avg, Count, F, Q, QuerySet
from django.utils import timezone

from jobqueue import scanner
from jobqueue.executors import ExecutorError, ExecutorUnavailable, get_executor, time_limit
from jobqueue.models import ACTIVE_STATUSES, FINAL_STATUSES, Job, JobStatus, Node
from jobqueue.queueing import schedule

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LEASE = timedelta(minutes=5)  # longer than one step can take (ssh retries included)
TIME_LIMIT_GRACE = timedelta(seconds=120)


class SubmissionError(Exception):
    """A refused submission: `status` is the HTTP answer (400, 403, 409), `errors` the reasons."""

    def __init__(self, status: int, errors: dict[str, list[str]] | str) -> None:
        super().__init__(str(errors))
        self.status = status
        self.errors = errors if isinstance(errors, dict) else {"detail": [errors]}


@dataclass
class Submission:
    code: str
    filename: str
    competition_id: str
    project_id: str
    expected_time: int
    user_id: str
    warnings: list[str] = field(default_factory=list)


# --- parsing and validation ------------------------------------------------------------------


def _config_text(data: Any, files: Any) -> str | None:
    upload = files.get("config_file") if files is not None else None
    if upload is not None:
        if upload.size > 64 * 1024:
            raise SubmissionError(400, {"config_file": ["The config file is larger than 64 KiB."]})
        raw = upload.read()
        upload.seek(0)
        try:
            return str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise SubmissionError(400, {"config_file": ["The config file is not UTF-8 text."]}) from None
    value = data.get("config") if data is not None else None
    return str(value) if value is not None else None


def parse_config(data: Any, files: Any) -> dict[str, Any]:
    text = _config_text(data, files)
    if text is None:
        raise SubmissionError(400, {"config_file": ["Send the job's config JSON as config_file (or config)."]})
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise SubmissionError(400, {"config_file": [f"The config is not valid JSON: {exc}."]}) from None
    if not isinstance(config, dict):
        raise SubmissionError(400, {"config_file": ["The config must be a JSON object."]})
    return config


def read_config_token(request: Any) -> str | None:
    """The `token` of a submitted config, for clients that do not send a Bearer header."""
    if request.method != "POST":
        return None
    try:
        config = parse_config(request.data, request.FILES)
    except SubmissionError:
        return None
    token = config.get("token")
    return token if isinstance(token, str) and token else None


def validate_code(upload: UploadedFile | None) -> tuple[str, str]:
    if upload is None:
        raise SubmissionError(400, {"code": ["Attach the Python file as code."]})
    name = Path(upload.name or "").name
    if not name.endswith(".py"):
        raise SubmissionError(400, {"code": ["The code must be a Python file (.py)."]})
    if upload.size is None or upload.size > settings.JOBQUEUE_MAX_FILE_BYTES:
        raise SubmissionError(
            400, {"code": [f"The code file is larger than {settings.JOBQUEUE_MAX_FILE_BYTES} bytes."]}
        )
    raw = upload.read()
    if not raw.strip():
        raise SubmissionError(400, {"code": ["The code file is empty."]})
    try:
        code = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(400, {"code": ["The code file is not UTF-8 text."]}) from None
    if "\x00" in code:
        raise SubmissionError(400, {"code": ["The code file is binary, not Python source."]})
    return code, name


def validate_config(config: dict[str, Any], user: User) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    for key in ("competition_id", "project_id"):
        value = config.get(key)
        if not isinstance(value, str) or not NAME.match(value):
            errors[key] = ["Required: 1 to 100 letters, digits, dots, dashes or underscores."]
    expected = config.get("expected_time")
    low, high = settings.JOBQUEUE_MIN_EXPECTED_TIME, settings.JOBQUEUE_MAX_EXPECTED_TIME
    if isinstance(expected, str) and expected.strip().isdigit():
        expected = int(expected)
    if isinstance(expected, bool) or not isinstance(expected, int):
        errors["expected_time"] = [f"Required: a whole number of seconds from {low} to {high}."]
    elif not low <= expected <= high:
        errors["expected_time"] = [f"Must be from {low} to {high} seconds, not {expected}."]
    user_id = config.get("user_id", user.get_username())
    if not isinstance(user_id, str) or not user_id:
        errors["user_id"] = ["Must be your user name."]
    if errors:
        raise SubmissionError(400, errors)
    if user_id != user.get_username():
        raise SubmissionError(403, "The token does not belong to this user_id.")
    return {
        "competition_id": config["competition_id"],
        "project_id": config["project_id"],
        "expected_time": expected,
        "user_id": user_id,
    }


def parse_submission(user: User, data: Any, files: Any) -> Submission:
    """Check the uploaded code and config (400 for each problem, 403 for another user's user_id)."""
    code, filename = validate_code(files.get("code"))
    fields = validate_config(parse_config(data, files), user)
    return Submission(code=code, filename=filename, **fields)


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


def _remaining(job: Job, now: Any) -> float:
    if job.status == JobStatus.RUNNING and job.started:
        return max(0.0, job.expected_time - (now - job.started).total_seconds())
    return float(job.expected_time)


def node_statistics() -> list[dict[str, Any]]:
    """Per node: queue length, expected wait (remaining expected time of its jobs), current job."""
    now = timezone.now()
    names = node_names()
    active = Job.objects.filter(status__in=ACTIVE_STATUSES, node__in=names).select_related("user").order_by("created")
    stats: dict[str, dict[str, Any]] = {
        name: {"node_id": name, "queue_length": 0, "total_wait_time": 0.0, "is_busy": False, "current_job": None}
        for name in names
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
    """The node with the least expected wait (ties: the first configured)."""
    stats = node_statistics()
    if not stats:
        return ""
    return min(stats, key=lambda entry: entry["total_wait_time"])["node_id"]


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


# --- the state machine -----------------------------------------------------------------------


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
            if current in ACTIVE_STATUSES:
                return False
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


def _start(job: Job, executor: Any) -> float | None:
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


def _follow(job: Job, executor: Any) -> float | None:
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
    _finish(job, status, error=error)
    try:
        executor.release(job)
    except (ExecutorUnavailable, ExecutorError, OSError) as exc:
        logger.warning("job %s: cleaning up after it failed: %s", job.job_id, exc)
    return None


def _finish(job: Job, status: str, *, error: str = "") -> None:
    now = timezone.now()
    job.status, job.finished = status, now
    job.error = error or job.error
    job.started = job.started or (now if job.remote_id else None)
    with transaction.atomic():
        job.save(update_fields=["status", "finished", "error", "started", "output", "stderr", "exit_code"])
        _release_node(job)
    try:
        job.result_file = str(write_results(job))
        Job.objects.filter(pk=job.pk).update(result_file=job.result_file)
    except OSError as exc:
        logger.error("job %s: cannot write its results file: %s", job.job_id, exc)


def results_record(job: Job) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "job_id": job.job_id,
        "user_id": job.user.get_username(),
        "competition_id": job.competition_id,
        "project_id": job.project_id,
        "status": job.status,
        "exit_code": job.exit_code,
        "node_id": job.node or None,
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
    """JOBQUEUE_DIR/results/{user}_{competition}_{time}.jsonl, the seed server's naming."""
    directory = Path(settings.JOBQUEUE_DIR) / "results"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (job.finished or timezone.now()).strftime("%Y%m%d_%H%M%S")
    path = directory / f"{job.user.get_username()}_{job.competition_id}_{stamp}.jsonl"
    if path.exists():
        path = directory / f"{job.user.get_username()}_{job.competition_id}_{stamp}_{job.job_id[:8]}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(results_record(job), ensure_ascii=False) + "\n")
    return path


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


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "user_id": job.user.get_username(),
        "competition_id": job.competition_id,
        "project_id": job.project_id,
        "status": job.status,
        "node_id": job.node or None,
        "created_at": job.created.isoformat(),
        "started_at": job.started.isoformat() if job.started else None,
        "completed_at": job.finished.isoformat() if job.finished else None,
        "expected_time": job.expected_time,
        "exit_code": job.exit_code,
    }


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
    return {
        "timestamp": now.isoformat(),
        "job_statistics": _status_counts(jobs),
        "user_statistics": per_user,
        "node_statistics": nodes,
        "queue_information": nodes,
        "active_jobs": [job_summary(job) for job in active],
        "recent_jobs": [job_summary(job) for job in jobs.select_related("user").order_by("-created")[:recent]],
        "health_metrics": {
            "node_utilization_percent": round(100.0 * busy / len(nodes), 1) if nodes else None,
            "average_queue_time_seconds": round(wait.total_seconds(), 1) if wait is not None else None,
            "total_active_jobs": len(active),
            "success_rate_percent": round(100.0 * done["ok"] / done["n"], 1) if done["n"] else None,
            "jobs_last_24h": jobs.filter(created__gte=now - timedelta(hours=24)).count(),
        },
    }
