"""Every Celery task of the portal has an idempotency case (README "Operating the portal": tasks are idempotent).

The cases live beside each app's tests (tests/<app>/test_<app>_idempotent.py, with the app's fakes
and fixtures) and run the task through tests/idempotency.py's run_twice(). This test fails when a
task (a beat task, one enqueued by name, any other) has no case, so a new task comes with one.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from userportal.celery import app

TESTS = Path(__file__).resolve().parent
CASE = re.compile(r'run_twice\(\s*"([\w.]+)"')


def covered() -> set[str]:
    return {name for path in TESTS.glob("*/test_*_idempotent.py") for name in CASE.findall(path.read_text())}


def portal_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name, task in app.tasks.items() if not name.startswith(("celery.", "tests."))}


def enqueued_by_name() -> set[str]:
    """Names passed to userportal.celery.enqueue in the apps' sources (literal, or jobqueue's ADVANCE)."""
    from jobqueue.queueing import ADVANCE

    names = {ADVANCE}
    for path in TESTS.parent.glob("*/*.py"):
        if path.parent.name not in ("tests", ".venv"):
            names |= set(re.findall(r'enqueue,?\s*\(?\s*"([\w.]+)"', path.read_text()))
    return names


def test_every_beat_task_is_a_registered_task():
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert beat and beat <= portal_tasks()


def test_every_task_enqueued_by_name_is_registered():
    assert {"extensions.apply", "priorities.activate", "jobqueue.advance"} <= enqueued_by_name() <= portal_tasks()


def uncovered() -> list[str]:
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    return sorted((beat | enqueued_by_name() | portal_tasks()) - covered())


def test_every_task_has_an_idempotency_case():
    assert uncovered() == []


def test_a_new_beat_task_without_a_case_is_named(settings):
    settings.CELERY_BEAT_SCHEDULE = {**settings.CELERY_BEAT_SCHEDULE, "new": {"task": "new.sweep", "schedule": 60.0}}
    assert uncovered() == ["new.sweep"]
