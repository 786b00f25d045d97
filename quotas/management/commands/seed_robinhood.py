"""``manage.py seed_robinhood``: demo rows in Robinhood's ACCT_STAT for the demo cluster's users."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from quotas import demo
from quotas.router import ROBINHOOD_DB_ALIAS
from userportal.dbrouter import demo_database

FALLBACK = [("alice", "physics"), ("bob", "physics"), ("bob", "chem"), ("carol", "chem"), ("staffer", "staff")]


class Command(BaseCommand):
    help = (
        "Fill the robinhood database's ACCT_STAT with deterministic demo rows for the users and accounts "
        "of the demo Slurm database (seed_demo), creating the table if needed. Idempotent: it replaces every "
        "row. Refuses anything but SQLite unless --allow-non-sqlite: a real Robinhood database is never "
        "written. --dry-run only counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument("--cluster", default=None, help="Cluster whose associations name the groups.")
        parser.add_argument("--max-pairs", type=int, default=2000, help="At most this many (user, group) pairs.")
        parser.add_argument("--database", default=ROBINHOOD_DB_ALIAS, help="Database alias (default robinhood).")
        parser.add_argument(
            "--allow-non-sqlite", action="store_true", help="Allow a PostgreSQL/MariaDB scratch database."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the rows; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"]
        demo_database(using, allow_non_sqlite=options["allow_non_sqlite"], command="seed_robinhood")
        pairs = self._pairs(options["cluster"], options["max_pairs"])
        if options["verbosity"]:
            self.stdout.write(f"{len(pairs)} (user, group) pairs")
        if options["dry_run"]:
            count = sum(1 for _ in demo.demo_rows(pairs, seed=options["seed"]))
            self.stdout.write(f"dry run: would write {count} ACCT_STAT rows to {using!r}")
            return
        count = demo.seed(pairs, seed=options["seed"], using=using)
        self.stdout.write(self.style.SUCCESS(f"wrote {count} ACCT_STAT rows to {using!r}"))

    def _pairs(self, cluster: str | None, limit: int) -> list[tuple[str, str]]:
        from slurm.models import cluster_models, default_cluster

        try:
            assoc = cluster_models(cluster or default_cluster()).assoc
            rows = list(
                assoc.objects.filter(deleted=0)
                .exclude(user="")
                .order_by("user", "acct")
                .values_list("user", "acct")[:limit]
            )
        except DatabaseError:
            rows = []
        if not rows:
            self.stdout.write("no Slurm associations found: using alice, bob, carol and staffer")
            return FALLBACK
        return rows
