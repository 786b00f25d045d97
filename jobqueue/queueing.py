"""Queueing a job's next step, by task name: services and tasks both call this, neither imports the other."""

from __future__ import annotations

from userportal.celery import app, enqueue

ADVANCE = "jobqueue.advance"  # jobqueue.tasks.advance_job


def schedule(job_id: str, delay: float = 0) -> None:
    """Enqueue a step of `job_id` in `delay` seconds.

    In eager mode (the unit tests) later steps are not chained: a step would run the next one
    at once, forever; the tests call steps.advance() themselves.
    """
    if delay and app.conf.task_always_eager:
        return
    enqueue(ADVANCE, countdown=delay or None, job_id=job_id)
