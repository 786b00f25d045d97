"""Create and drop the unmanaged Slurm tables in a demo or test database.

slurmdbd creates the real schema; these helpers build a copy of the common-column subset
(see slurm.models) for the demo seeder and for the test suite on SQLite (or a scratch
PostgreSQL/MariaDB test database). They never run migrations: the router refuses those.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections

from slurm.models import models_for
from slurm.router import SLURM_DB_ALIAS, allow_writes


def create_tables(using: str = SLURM_DB_ALIAS, clusters: Sequence[str] | None = None) -> None:
    """Create the global tables and the per-cluster tables of ``clusters`` that do not exist yet.

    Idempotent: existing tables are left alone (so ``--reuse-db`` test runs and repeated
    seeding work). ``clusters`` defaults to ``settings.SLURM_CLUSTERS``. On SQLite this must
    run outside ``transaction.atomic()``, a limit of SQLite's schema editor.
    """
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    missing = [model for model in models_for(clusters) if model._meta.db_table not in existing]
    if not missing:
        return
    with allow_writes(), connection.schema_editor() as editor:
        for model in missing:
            editor.create_model(model)
