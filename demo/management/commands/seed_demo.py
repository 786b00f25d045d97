"""``manage.py seed_demo``: fill the demo Slurm database with a synthetic cluster."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.catalog import MIN_JOBS
from demo.seed import seed_demo
from slurm.models import default_cluster
from slurm.router import SLURM_DB_ALIAS
from userportal.dbrouter import demo_database


class Command(BaseCommand):
    help = (
        "Build a realistic synthetic Slurm cluster (accounts, users, associations, jobs, steps, node "
        "events, job scripts) in the slurm database, creating the tables if needed. Deterministic: the "
        "same --seed, sizes and --now give identical rows. Idempotent: it wipes the cluster's tables "
        "and replaces the global rows it owns (TRES, QOS, accounts, users) in one transaction, so "
        "running it again leaves the same data. Refuses any database but SQLite unless "
        "--allow-non-sqlite is given: the real accounting database is never written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument("--users", type=int, default=200, help="Users, alice and bob included (default 200).")
        parser.add_argument("--accounts", type=int, default=40, help="Lab accounts under the departments (default 40).")
        parser.add_argument(
            "--jobs", type=int, default=50_000, help=f"Job records (default 50000, at least {MIN_JOBS})."
        )
        parser.add_argument("--days", type=int, default=90, help="History length in days (default 90).")
        parser.add_argument("--cluster", default=None, help="Cluster name from SLURM_CLUSTERS (default: the first).")
        parser.add_argument(
            "--now",
            type=int,
            default=None,
            help="Epoch that counts as now (default: the start of the current hour, UTC).",
        )
        parser.add_argument("--database", default=SLURM_DB_ALIAS, help="Database alias (default slurm).")
        parser.add_argument(
            "--allow-non-sqlite",
            action="store_true",
            help="Allow writing to a PostgreSQL or MariaDB scratch database. Never point this at slurmdbd's database.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"]
        demo_database(using, allow_non_sqlite=options["allow_non_sqlite"], command="seed_demo")
        cluster = options["cluster"] or default_cluster()
        verbosity = options["verbosity"]

        def progress(line: str) -> None:
            if verbosity:
                self.stdout.write(line)

        try:
            summary = seed_demo(
                cluster=cluster,
                seed=options["seed"],
                users=options["users"],
                accounts=options["accounts"],
                jobs=options["jobs"],
                days=options["days"],
                now=options["now"],
                using=using,
                progress=progress,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity:
            states = ", ".join(f"{name} {count}" for name, count in sorted(summary.states.items()))
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded {summary.cluster}: {summary.jobs} jobs, {summary.steps} steps, {summary.users} users, "
                    f"{summary.accounts} accounts in {summary.seconds:.1f} s (seed {summary.seed}, now {summary.now})."
                )
            )
            self.stdout.write(f"States: {states}")
