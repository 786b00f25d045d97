"""The portal's Celery app (Redis broker). Workers: `celery -A userportal worker`."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "userportal.settings")

app = Celery("userportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue(name: str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue the task registered as `name` with keyword arguments, without importing its module.

    Services enqueue their app's tasks by name, so they never import the tasks module that imports
    them (no import circle). The registered task is looked up rather than `app.send_task` used:
    only a task's own `apply_async` honours CELERY_TASK_ALWAYS_EAGER (the unit tests run tasks
    in-process that way). A process that has not imported the task modules yet (the web server)
    imports them once, as a worker does when it starts.
    """
    if name not in app.tasks:
        app.loader.import_default_modules()
    app.tasks[name].apply_async(kwargs=kwargs, countdown=countdown)
