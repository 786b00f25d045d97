"""Database router for Robinhood's database: reads go to the ``robinhood`` alias, writes raise.

Robinhood owns ACCT_STAT (its own scanner and changelog reader write it); the portal reads it
with a SELECT-only account. This router (a :class:`userportal.dbrouter.ReadOnlyRouter`) is the
second line of defence: a stray ``save()`` fails loudly, and the alias is never migrated. It
owns the models that say ``robinhood_model = True``; the portal's own quota models (Quota,
UsageSnapshot…) are ordinary models of the default database. Writes are allowed only inside
:func:`allow_writes`, which the demo seeder and the test fixtures use.
"""

from __future__ import annotations

from userportal.dbrouter import ReadOnlyDatabase, ReadOnlyRouter

ROBINHOOD_DB_ALIAS = "robinhood"


class ReadOnlyRobinhoodDatabase(ReadOnlyDatabase):
    """A write to Robinhood's database was attempted outside :func:`allow_writes`."""


class RobinhoodRouter(ReadOnlyRouter):
    alias = ROBINHOOD_DB_ALIAS
    model_flag = "robinhood_model"
    error = ReadOnlyRobinhoodDatabase
    description = "Robinhood's database is read-only; Robinhood is its only writer"


allow_writes = RobinhoodRouter.allow_writes
