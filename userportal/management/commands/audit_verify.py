from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from userportal.audit import verify_chain
from userportal.models import AuditEntry


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain: report every edited, deleted or reordered entry. "
        "Exits non-zero when the chain is broken. Reads only."
    )

    def handle(self, *args: Any, verbosity: int = 1, **options: Any) -> None:
        total = AuditEntry.objects.count()
        problems = 0
        for problem in verify_chain():
            problems += 1
            where = f"entry {problem.seq}" if problem.seq is not None else "chain"
            self.stderr.write(f"{where}: {problem.message}")
        if problems:
            raise CommandError(f"audit log broken: {problems} problem(s) in {total} entries")
        if verbosity:
            self.stdout.write(f"audit log intact: {total} entries verified")
