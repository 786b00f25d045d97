"""Database router for Robinhood's database: reads go to the ``robinhood`` alias, writes raise.

Robinhood owns ACCT_STAT (its own scanner and changelog reader write it); the portal reads it
with a SELECT-only account. This router is the second line of defence: a stray ``save()`` fails
loudly, and the alias is never migrated. Writes are allowed only inside :func:`allow_writes`,
which the demo seeder and the test fixtures use. The portal's own quota models (Quota,
UsageSnapshot…) are ordinary models of the default database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import models
from django.db.utils import DatabaseError

ROBINHOOD_DB_ALIAS = "robinhood"

_writes_allowed: ContextVar[bool] = ContextVar("robinhood_writes_allowed", default=False)


class ReadOnlyRobinhoodDatabase(DatabaseError):
    """A write to Robinhood's database was attempted outside :func:`allow_writes`."""


@contextmanager
def allow_writes() -> Iterator[None]:
    """Allow writes to the Robinhood models in this thread or task (demo seeder, tests)."""
    token = _writes_allowed.set(True)
    try:
        yield
    finally:
        _writes_allowed.reset(token)


def is_robinhood_model(model: type[models.Model]) -> bool:
    return bool(getattr(model, "robinhood_model", False))


class RobinhoodRouter:
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return ROBINHOOD_DB_ALIAS if is_robinhood_model(model) else None

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        if not is_robinhood_model(model):
            return None
        # None or False would mean "no opinion" and Django would write to "default": raise instead.
        if not _writes_allowed.get():
            raise ReadOnlyRobinhoodDatabase(
                f"Robinhood's database is read-only (write to {model._meta.label}); only the demo seeder and "
                "the tests may write, inside quotas.router.allow_writes()."
            )
        return ROBINHOOD_DB_ALIAS

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool | None:
        a, b = is_robinhood_model(type(obj1)), is_robinhood_model(type(obj2))
        if a or b:
            return a and b
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if db == ROBINHOOD_DB_ALIAS:
            return False  # Robinhood creates its own schema
        model = hints.get("model")
        if model is not None and is_robinhood_model(model):
            return False
        return None
