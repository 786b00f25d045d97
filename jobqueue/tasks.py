"""Celery tasks of the job queue: thin, named, idempotent, acknowledged late.

`jobqueue.advance` runs one step of a job (services.advance) and enqueues the next. A worker
killed mid-step loses nothing: with acks_late the broker hands the step to another worker, and
the periodic `jobqueue.reconcile` (Celery beat, every minute) re-enqueues any active job whose
steps stopped (its worker died holding a delayed step).
"""

from __future__ import annotations

from celery import current_app, shared_task

from jobqueue import services


def schedule(job_id: str, delay: float = 0) -> None:
    """Enqueue a step of `job_id` in `delay` seconds.

    In eager mode (the unit tests) later steps are not chained: a step would run the next one
    at once, forever; the tests call services.advance() themselves.
    """
    if delay and current_app.conf.task_always_eager:
        return
    advance_job.apply_async(kwargs={"job_id": job_id}, countdown=delay or None)


@shared_task(name="jobqueue.advance", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance_job(*, job_id: str) -> None:
    delay = services.advance(job_id)
    if delay is not None:
        schedule(job_id, delay)


@shared_task(name="jobqueue.reconcile", acks_late=True, ignore_result=True)
def reconcile() -> int:
    return len(services.reconcile())
