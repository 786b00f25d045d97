"""The periodic (Celery beat) tasks' last run and last success, recorded by the worker that ran them.

Celery's task_prerun and task_postrun signals (connected in UserportalConfig.ready()) update one
BeatRun row per task named in CELERY_BEAT_SCHEDULE, in the portal's database: every web process,
instance and worker sees the same rows. A task is *late* when its last success is older than twice
its interval plus a minute (or it never succeeded although it ran). /health/ shows them (the error
text to staff only), /staff/tasks/ lists them, /metrics exports them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

logger = logging.getLogger(__name__)

GRACE = timedelta(seconds=60)


def schedule() -> dict[str, timedelta | None]:
    """Each beat task's name and interval (None: not a fixed interval, e.g. a crontab)."""
    tasks: dict[str, timedelta | None] = {}
    for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values():
        every = entry.get("schedule")
        if isinstance(every, int | float):
            tasks[entry["task"]] = timedelta(seconds=float(every))
        elif isinstance(every, timedelta):
            tasks[entry["task"]] = every
        else:
            run_every = getattr(every, "run_every", None)
            tasks[entry["task"]] = run_every if isinstance(run_every, timedelta) else None
    return tasks


def task_started(name: str) -> None:
    if name not in schedule():
        return
    from userportal.models import BeatRun

    now = timezone.now()
    try:
        row, created = BeatRun.objects.get_or_create(task=name, defaults={"runs": 1, "last_run": now})
        if not created:
            BeatRun.objects.filter(pk=row.pk).update(runs=F("runs") + 1, last_run=now)
    except DatabaseError as exc:  # never fail the task for its bookkeeping
        logger.warning("beat: recording the start of %s failed: %s", name, exc)


def task_ended(name: str, state: str, result: Any) -> None:
    if name not in schedule():
        return
    from userportal.models import BeatRun

    now = timezone.now()
    if state == "SUCCESS":
        changes: dict[str, Any] = {"last_success": now}
    elif state in ("FAILURE", "RETRY"):
        changes = {"last_failure": now, "last_error": f"{type(result).__name__}: {result}"[:2000]}
    else:
        return
    try:
        updated = BeatRun.objects.filter(task=name).update(**changes)
        if not updated:
            BeatRun.objects.create(task=name, runs=1, last_run=now, **changes)
    except DatabaseError as exc:
        logger.warning("beat: recording the end of %s failed: %s", name, exc)


@dataclass(frozen=True)
class TaskStatus:
    task: str
    interval: timedelta | None
    runs: int
    last_run: datetime | None
    last_success: datetime | None
    last_failure: datetime | None
    last_error: str
    late: bool


def statuses(now: datetime | None = None) -> list[TaskStatus]:
    """Every beat task of the schedule, with what the workers recorded (nothing yet: never ran)."""
    from userportal.models import BeatRun

    now = now or timezone.now()
    rows = {row.task: row for row in BeatRun.objects.filter(task__in=list(schedule()))}
    result = []
    for name, interval in sorted(schedule().items()):
        row = rows.get(name)
        last_success = row.last_success if row else None
        late = False
        if interval is not None and row is not None and row.last_run is not None:
            late = last_success is None or now - last_success > 2 * interval + GRACE
        result.append(
            TaskStatus(
                task=name,
                interval=interval,
                runs=row.runs if row else 0,
                last_run=row.last_run if row else None,
                last_success=last_success,
                last_failure=row.last_failure if row else None,
                last_error=row.last_error if row else "",
                late=late,
            )
        )
    return result


def health(staff: bool) -> dict[str, dict[str, Any]]:
    """The /health/ section: each task's last run and success (ISO 8601) and whether it is late."""
    body = {}
    for status in statuses():
        entry: dict[str, Any] = {
            "last_run": status.last_run.isoformat() if status.last_run else None,
            "last_success": status.last_success.isoformat() if status.last_success else None,
            "late": status.late,
        }
        if staff:
            entry["runs"] = status.runs
            entry["last_failure"] = status.last_failure.isoformat() if status.last_failure else None
            entry["last_error"] = status.last_error
        body[status.task] = entry
    return body


def metric_families() -> list[Any]:
    from prometheus_client.core import GaugeMetricFamily

    run = GaugeMetricFamily(
        "portal_beat_last_run_timestamp_seconds", "When each periodic task last started (Unix time).", labels=["task"]
    )
    success = GaugeMetricFamily(
        "portal_beat_last_success_timestamp_seconds", "When each periodic task last succeeded (Unix time).",
        labels=["task"],
    )  # fmt: skip
    late = GaugeMetricFamily(
        "portal_beat_late", "1 when a periodic task's last success is older than twice its interval.", labels=["task"]
    )
    try:
        found = statuses()
    except DatabaseError:
        return [run, success, late]
    for status in found:
        if status.last_run:
            run.add_metric([status.task], status.last_run.timestamp())
        if status.last_success:
            success.add_metric([status.task], status.last_success.timestamp())
        late.add_metric([status.task], 1.0 if status.late else 0.0)
    return [run, success, late]


def connect_signals() -> None:
    """Record the beat tasks' runs (UserportalConfig.ready())."""
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_prerun, weak=False, dispatch_uid="userportal.beat.prerun")
    task_postrun.connect(_postrun, weak=False, dispatch_uid="userportal.beat.postrun")


def _prerun(sender: Any = None, **kwargs: Any) -> None:
    task_started(getattr(sender, "name", ""))


def _postrun(sender: Any = None, state: str | None = None, retval: Any = None, **kwargs: Any) -> None:
    task_ended(getattr(sender, "name", ""), state or "", retval)
