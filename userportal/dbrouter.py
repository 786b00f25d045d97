"""A database router for a database the portal reads and never writes: reads go to its alias, writes raise.

Another system owns such a database (slurmdbd the Slurm accounting database, Robinhood its
ACCT_STAT) and is its only writer; the portal reads it with a SELECT-only account in production.
The router is the second line of defence, so a stray ``save()`` fails loudly in development and
tests instead of going to the wrong place, and the alias is never migrated.

Each such database subclasses :class:`ReadOnlyRouter` once (``slurm.router.SlurmRouter``,
``quotas.router.RobinhoodRouter``), naming its alias, which models it owns (an app label, or a
``<flag> = True`` attribute on the model class) and its own :class:`ReadOnlyDatabase` error.
Writes are allowed only inside the subclass's :meth:`~ReadOnlyRouter.allow_writes`, which demo
seeders and test factories use. Each subclass has its own flag, a :class:`~contextvars.ContextVar`:
per thread and per asyncio task, so opening it in one request never lets another request write,
and opening one database's never opens another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

from django.db import models
from django.db.utils import DatabaseError


class ReadOnlyDatabase(DatabaseError):
    """A write to a read-only database was attempted outside its router's ``allow_writes()``.

    It subclasses :class:`django.db.utils.DatabaseError` so code that already turns database
    failures into an error page or a 503 treats it the same way; it is still a programming
    error, and tests should name the database's own subclass rather than ``DatabaseError``.
    """


class ReadOnlyRouter:
    """Route the owned models to ``alias``; never migrate it; refuse writes outside ``allow_writes()``.

    Subclasses set ``alias``, ``error`` and ``description``, and either ``app_label`` (every
    model of that app) or ``model_flag`` (models whose class has that attribute set to True).
    """

    alias: ClassVar[str]
    app_label: ClassVar[str | None] = None
    model_flag: ClassVar[str | None] = None
    error: ClassVar[type[ReadOnlyDatabase]] = ReadOnlyDatabase
    description: ClassVar[str]  # "The Slurm accounting database is read-only; slurmdbd is its only writer."
    _writes_allowed: ClassVar[ContextVar[bool]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if (cls.app_label is None) == (cls.model_flag is None):
            raise TypeError(f"{cls.__name__} must set exactly one of app_label and model_flag")
        cls._writes_allowed = ContextVar(f"{cls.alias}_writes_allowed", default=False)

    @classmethod
    def owns(cls, model: type[models.Model]) -> bool:
        if cls.app_label is not None:
            return model._meta.app_label == cls.app_label
        return bool(getattr(model, cls.model_flag or "", False))

    # --- the write switch (seeders and test factories only) ------------------------------------
    @classmethod
    @contextmanager
    def allow_writes(cls) -> Iterator[None]:
        """Allow writes to this database's models in this thread or task."""
        token = cls._writes_allowed.set(True)
        try:
            yield
        finally:
            cls._writes_allowed.reset(token)

    @classmethod
    def writes_allowed(cls) -> bool:
        return cls._writes_allowed.get()

    @classmethod
    def check_writes_allowed(cls, what: str) -> None:
        """Raise the database's error unless inside its :meth:`allow_writes`."""
        if not cls._writes_allowed.get():
            raise cls.error(
                f"{cls.description} ({what}). Only the demo seeder and the tests may write, inside "
                f"{cls.__module__}.allow_writes()."
            )

    # --- Django's router interface -------------------------------------------------------------
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return self.alias if self.owns(model) else None

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        if not self.owns(model):
            return None
        # Returning None or False would mean "no opinion" and Django would write to "default";
        # raising is the only way a router can refuse (TT's router got this wrong).
        self.check_writes_allowed(f"write to {model._meta.label}")
        return self.alias

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool | None:
        owned1, owned2 = self.owns(type(obj1)), self.owns(type(obj2))
        if owned1 or owned2:
            # A relation across two databases could never be joined; within this one it can.
            return owned1 and owned2
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        # The owner creates and migrates its schema; tests and demos create the unmanaged tables themselves.
        if db == self.alias or (self.app_label is not None and app_label == self.app_label):
            return False
        model = hints.get("model")
        if model is not None and self.owns(model):
            return False
        return None


def demo_database(using: str, *, allow_non_sqlite: bool, command: str) -> None:
    """Refuse to seed anything but a SQLite demo database (or, when allowed, a scratch server database).

    The seeders write the tables slurmdbd and Robinhood own: pointed at a production database by
    mistake, they would corrupt it. Raises CommandError naming the alias and the way out.
    """
    from django.core.management.base import CommandError
    from django.db import connections

    if using not in connections:
        raise CommandError(f"Unknown database alias {using!r}.")
    vendor = connections[using].vendor
    if vendor != "sqlite" and not allow_non_sqlite:
        raise CommandError(
            f"The {using!r} database is {vendor}, not SQLite. {command} writes only to a demo database; "
            "it refuses anything else so that the real database is never written. "
            "Pass --allow-non-sqlite for a scratch database."
        )
