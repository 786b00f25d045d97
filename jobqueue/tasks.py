"""Celery tasks of the job queue: thin, named, idempotent, acknowledged late.

`jobqueue.advance` runs one step of a job (steps.advance) and enqueues the next. A worker
killed mid-step loses nothing: with acks_late the broker hands the step to another worker, and
the periodic `jobqueue.reconcile` (Celery beat, every minute) re-enqueues any active job whose
steps stopped (its worker died holding a delayed step).
"""

from __future__ import annotations

from celery import shared_task

from jobqueue import services, steps
from jobqueue.queueing import ADVANCE, schedule


@shared_task(name=ADVANCE, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance_job(*, job_id: str) -> None:
    delay = steps.advance(job_id)
    if delay is not None:
        schedule(job_id, delay)


@shared_task(name="jobqueue.reconcile", acks_late=True, ignore_result=True)
def reconcile() -> int:
    steps.release_stuck_nodes()  # a disposable node whose reset failed, tried again
    return len(services.reconcile())
