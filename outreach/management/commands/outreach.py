"""Run the efficiency outreach now, as the beat task does; --dry-run prints what would be sent and sends nothing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from outreach import services
from outreach.rules import RULES


class Command(BaseCommand):
    help = (
        "Review the jobs that ended in the last OUTREACH_WINDOW_DAYS with the job page's figures, and mail each "
        "user the report the rules in force find (opt-outs and the once-per-period limit respected). "
        "Safe to re-run; --dry-run prints the reports and sends and records nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Print what would be sent; send nothing.")
        parser.add_argument("--user", action="append", dest="users", metavar="NAME", help="Only this user (repeat).")
        parser.add_argument("--rule", action="append", dest="rules", choices=sorted(RULES), help="Only this rule.")

    def handle(self, *, dry_run: bool, users: list[str] | None, rules: list[str] | None, **options: Any) -> None:
        verbosity = int(options.get("verbosity", 1))
        unknown = [r for r in rules or () if r not in settings.OUTREACH_RULES]
        if unknown:
            raise CommandError(f"not in OUTREACH_RULES: {', '.join(unknown)}")
        for plan in services.run(dry_run=dry_run, users=users, rules=rules):
            for report in plan.reports:
                rules_found = ", ".join(f"{f.rule.id} ({len(f.jobs)})" for f in report.findings)
                self.stdout.write(f"{report.username} <{report.email or 'no address'}>: {rules_found}")
                if dry_run and verbosity >= 2:
                    self.stdout.write(f"Subject: {report.subject}\n\n{report.body}\n")
            for notice in plan.notices:
                self.stderr.write(str(notice))
            mode = "dry run, nothing sent" if dry_run else f"{plan.sent} sent"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{plan.jobs} job(s) reviewed, {len(plan.reports)} report(s) ({mode}); left out: "
                    f"{plan.skipped.get('opted_out', 0)} opted out, {plan.skipped.get('rate_limited', 0)} rate-limited"
                )
            )
