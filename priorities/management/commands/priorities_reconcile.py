"""Apply, expire and repair GPU priorities now, as the beat task does; --dry-run only reports."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from priorities.qos import automatic
from priorities.reconciler import Change, reconcile


class Command(BaseCommand):
    help = (
        "Compare the GPU priorities in the portal's database with Slurm and repair the drift: start due "
        "priorities, expire ended ones, recreate a missing QOS, delete one left after expiry. "
        "Safe to re-run; --dry-run changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; change nothing.")

    def handle(self, *, dry_run: bool, verbosity: int, **options: Any) -> None:
        def progress(change: Change) -> None:
            if verbosity:
                self.stdout.write(str(change))

        changes = reconcile(dry_run=dry_run, progress=progress)
        mode = "dry run" if dry_run else (automatic() and "automatic") or "manual (reported only)"
        if verbosity:
            self.stdout.write(self.style.SUCCESS(f"{len(changes)} change(s); mode: {mode}"))
