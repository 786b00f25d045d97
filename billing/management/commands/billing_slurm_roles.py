"""Re-check now, as the beat task does, the billing roles Slurm's AdminLevel gives (billing.roles)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import roles
from userportal.errors import DataSourceError


class Command(BaseCommand):
    help = (
        "Bring the billing role groups (slurm-operators, slurm-administrators) in line with Slurm's AdminLevel "
        "now (BILLING_ROLES_FROM_SLURM; empties them when it is off); --list only shows their members."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list", dest="list_only", action="store_true", help="Show the members; change nothing.")

    def handle(self, *, list_only: bool, **options: Any) -> None:
        if not list_only:
            try:
                changed = roles.sync_all()
            except DataSourceError as exc:
                raise CommandError(f"the AdminLevel source did not answer: {exc}") from exc
            for name, group in sorted(changed.items()):
                self.stdout.write(f"{name}\t{group or 'no role'}")
            self.stdout.write(
                f"{len(changed)} change(s); {'on' if roles.enabled() else 'off'} (BILLING_ROLES_FROM_SLURM)"
            )
        User = get_user_model()
        for group in roles.GROUPS:
            members = User.objects.filter(groups__name=group).order_by("username").values_list("username", flat=True)
            self.stdout.write(f"{group}: {', '.join(members) or '-'}")
