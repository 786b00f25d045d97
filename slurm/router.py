"""Database router for the Slurm accounting database: reads go to the ``slurm`` alias, writes raise.

slurmdbd owns the accounting schema and is its only writer (domain.md section 1). The portal
reads it with a SELECT-only account in production; this router is the second line of defence,
so a stray ``save()`` fails loudly in development and tests instead of going to the wrong place.

Writes are allowed only inside :func:`allow_writes`, which the demo seeder (``demo.seed``) and
the test factories (``tests/slurm_factories.py``) use to fill a demo or test copy of the database.
The flag is a :class:`~contextvars.ContextVar`, so it is per thread and per asyncio task:
opening it in one request never lets another request write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import models
from django.db.utils import DatabaseError

SLURM_APP_LABEL = "slurm"
SLURM_DB_ALIAS = "slurm"

_writes_allowed: ContextVar[bool] = ContextVar("slurm_writes_allowed", default=False)


class ReadOnlySlurmDatabase(DatabaseError):
    """A write to the Slurm accounting database was attempted outside :func:`allow_writes`.

    It subclasses :class:`django.db.utils.DatabaseError` so code that already turns database
    failures into an error page or a 503 treats it the same way; it is still a programming
    error, and tests should name this class rather than ``DatabaseError``.
    """


@contextmanager
def allow_writes() -> Iterator[None]:
    """Allow writes to the slurm models in this thread or task, for seeders and test factories only."""
    token = _writes_allowed.set(True)
    try:
        yield
    finally:
        _writes_allowed.reset(token)


def writes_allowed() -> bool:
    return _writes_allowed.get()


def check_writes_allowed(what: str) -> None:
    """Raise :class:`ReadOnlySlurmDatabase` unless inside :func:`allow_writes`."""
    if not _writes_allowed.get():
        raise ReadOnlySlurmDatabase(
            f"The Slurm accounting database is read-only ({what}); slurmdbd is its only writer. "
            "Only the demo seeder and the test factories may write, inside slurm.router.allow_writes()."
        )


def is_slurm_model(model: type[models.Model]) -> bool:
    return model._meta.app_label == SLURM_APP_LABEL


class SlurmRouter:
    """Route the ``slurm`` app to the ``slurm`` alias; never migrate it; refuse writes."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return SLURM_DB_ALIAS if is_slurm_model(model) else None

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        if not is_slurm_model(model):
            return None
        # Returning None or False would mean "no opinion" and Django would write to "default";
        # raising is the only way a router can refuse (TT's router got this wrong).
        check_writes_allowed(f"write to {model._meta.label}")
        return SLURM_DB_ALIAS

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool | None:
        slurm1, slurm2 = is_slurm_model(type(obj1)), is_slurm_model(type(obj2))
        if slurm1 or slurm2:
            # A relation across the two databases could never be joined; within slurm it can.
            return slurm1 and slurm2
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        # slurmdbd creates and migrates its own schema; tests and the demo create the unmanaged
        # tables with slurm.schema.create_tables() instead.
        if db == SLURM_DB_ALIAS or app_label == SLURM_APP_LABEL:
            return False
        return None
