"""Build or bring up to date, now, billing's job index (billing.job_index), as its beat task does."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from billing import job_index


class Command(BaseCommand):
    help = (
        "Sync billing's job index with slurmdbd now (every cluster, or --cluster); --rebuild reads every block "
        "again; --status only shows how far behind it is. Progress is printed per block read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", action="append", help="A cluster of SLURM_CLUSTERS (repeatable).")
        parser.add_argument("--full", action="store_true", help="Compare every block with slurmdbd (a full sync).")
        parser.add_argument("--rebuild", action="store_true", help="Read every block again.")
        parser.add_argument("--status", action="store_true", help="Show the index's lag; change nothing.")

    def handle(self, *, cluster: list[str] | None, full: bool, rebuild: bool, status: bool, **options: Any) -> None:
        names = cluster or list(settings.SLURM_CLUSTERS)
        unknown = [name for name in names if name not in settings.SLURM_CLUSTERS]
        if unknown:
            raise CommandError(f"not in SLURM_CLUSTERS: {', '.join(unknown)}")
        if not settings.BILLING_JOB_INDEX and not status:
            raise CommandError("BILLING_JOB_INDEX is off: the pages would not read the index.")
        for name in names:
            if not status:
                try:
                    report = job_index.sync(
                        name, full=full, rebuild=rebuild, progress=lambda line: self.stdout.write(f"  {line}")
                    )
                except DatabaseError as exc:
                    raise CommandError(f"{name}: {exc}") from exc
                self.stdout.write(
                    f"{name}: {'full sync' if report.full else 'sync'}: {report.rebuilt} block(s) read, "
                    f"{report.dropped} dropped, {report.blocks} in all, "
                    f"{report.jobs:,} finished jobs, in {report.seconds:.1f} s"
                )
            found = job_index.status(name)
            when = f"synced at {found.synced_at:%Y-%m-%d %H:%M:%S %Z}" if found.synced_at else "never synced"
            self.stdout.write(
                f"{name}: {when}; {'read by the pages' if found.usable else 'not read (pages read live)'}"
            )
