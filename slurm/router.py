"""Database router for the Slurm accounting database: reads go to the ``slurm`` alias, writes raise.

slurmdbd owns the accounting schema and is its only writer (domain.md section 1). The portal
reads it with a SELECT-only account in production; this router (a
:class:`userportal.dbrouter.ReadOnlyRouter`) is the second line of defence, so a stray ``save()``
fails loudly in development and tests instead of going to the wrong place.

Writes are allowed only inside :func:`allow_writes`, which the demo seeder (``demo.seed``) and
the test factories (``tests/slurm_factories.py``) use to fill a demo or test copy of the database.
The flag is per thread and per asyncio task: opening it in one request never lets another
request write. The models check it again for writes that skip the router (``using=``).
"""

from __future__ import annotations

from userportal.dbrouter import ReadOnlyDatabase, ReadOnlyRouter

SLURM_APP_LABEL = "slurm"
SLURM_DB_ALIAS = "slurm"


class ReadOnlySlurmDatabase(ReadOnlyDatabase):
    """A write to the Slurm accounting database was attempted outside :func:`allow_writes`."""


class SlurmRouter(ReadOnlyRouter):
    """Route the ``slurm`` app to the ``slurm`` alias; never migrate it; refuse writes."""

    alias = SLURM_DB_ALIAS
    app_label = SLURM_APP_LABEL
    error = ReadOnlySlurmDatabase
    description = "The Slurm accounting database is read-only; slurmdbd is its only writer"


# The module's interface, used by the models, the demo seeder and the test factories.
allow_writes = SlurmRouter.allow_writes
writes_allowed = SlurmRouter.writes_allowed
check_writes_allowed = SlurmRouter.check_writes_allowed
