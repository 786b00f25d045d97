"""Running a Celery task twice in a row and proving the second run changes nothing (README: "Tasks are idempotent").

Each app's tests/<app>/test_<app>_idempotent.py sets up work for its tasks, fakes the boundaries its
unit tests fake, and calls run_twice(); tests/test_tasks_idempotent.py checks every task has a case.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any

from django.apps import apps
from django.core import mail
from django.db import router

from userportal.celery import app

# The worker's own bookkeeping of beat runs (userportal.beat): it counts every run, by design.
IGNORED = {"userportal.BeatRun"}
# When a run last looked (a re-measurement of the same figures, auto_now): a repeat may move them, nothing else.
VOLATILE = {
    "quotas.UsageSnapshot": {"taken_at"},
    "quotas.QuotaAlert": {"updated_at"},
    "billing.JobIndexState": {"synced_at", "settled_before", "seconds"},  # when the sync looked, how long it took
}


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every model kept in the portal's database (the `default` alias)."""
    rows = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or meta.label in IGNORED or router.db_for_read(model) != "default":
            continue
        skip = VOLATILE.get(meta.label, set())
        fields = [field.attname for field in meta.concrete_fields if field.attname not in skip]
        rows[meta.label] = list(model._default_manager.using("default").order_by("pk").values(*fields))
    return rows


def _changed(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {label: (before[label], after[label]) for label in before if before[label] != after[label]}


def run_twice(name: str, capture: Callable[..., Any], *, calls: Sized = (), **kwargs: Any) -> tuple[Any, Any]:
    """Run the task registered as `name` twice (through Celery, eagerly, on-commit work included).

    The first run must do something (rows, mail or `calls`: the fake boundary's record of Slurm
    commands); the second must change no row, send no mail and make no call. Returns both results.
    `capture` is pytest-django's django_capture_on_commit_callbacks.
    """
    if name not in app.tasks:
        app.loader.import_default_modules()
    task = app.tasks[name]
    start, mails, made = snapshot(), len(mail.outbox), len(calls)
    with capture(execute=True):
        first = task.apply(kwargs=kwargs).get()
    middle, mails_after, made_after = snapshot(), len(mail.outbox), len(calls)
    assert _changed(start, middle) or mails_after > mails or made_after > made, f"{name}: the first run had no work"
    with capture(execute=True):
        second = task.apply(kwargs=kwargs).get()
    changed = _changed(middle, snapshot())
    assert changed == {}, f"{name}: the second run changed rows: {changed}"
    assert [m.subject for m in mail.outbox[mails_after:]] == [], f"{name}: the second run mailed again"
    assert list(calls)[made_after:] == [], f"{name}: the second run ran Slurm commands again"
    return first, second
