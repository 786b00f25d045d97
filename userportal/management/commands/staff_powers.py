from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from userportal.powers import ensure_groups, grant, powers, revoke


class Command(BaseCommand):
    help = (
        "Staff powers (one group per power): `list` shows each power, its permissions and members; "
        "`grant`/`revoke` POWER... --user NAME (repeatable) or --all-staff, or --all for every power. "
        "Creates the groups and sets their permissions on every run. After upgrading, "
        "`staff_powers grant --all --all-staff` keeps today's staff able to do what they did."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "grant", "revoke"])
        parser.add_argument("powers", nargs="*", metavar="POWER")
        parser.add_argument("--all", action="store_true", help="Every power.")
        parser.add_argument("--user", action="append", default=[], metavar="NAME", help="A username (repeatable).")
        parser.add_argument("--all-staff", action="store_true", help="Every user with staff status.")

    def handle(self, *args: Any, action: str, verbosity: int = 1, **options: Any) -> None:
        known = powers()
        with transaction.atomic():
            groups = ensure_groups()
            if action == "list":
                for power in known.values():
                    members = ", ".join(sorted(groups[power.name].user_set.values_list("username", flat=True)))
                    self.stdout.write(f"{power.name}: {power.description} ({', '.join(power.permissions)})")
                    self.stdout.write(f"    {members or '(nobody)'}")
                return
            names = list(known) if options["all"] else options["powers"]
            unknown = [name for name in names if name not in known]
            if unknown or not names:
                raise CommandError(f"Name powers from: {', '.join(known)} (or --all); unknown: {', '.join(unknown)}")
            users = list(self._users(options["user"], options["all_staff"]))
            for user in users:
                (grant if action == "grant" else revoke)(user, names)
                if verbosity:
                    self.stdout.write(f"{action}: {user.get_username()}: {', '.join(names)}")

    def _users(self, usernames: list[str], all_staff: bool) -> Any:
        model = get_user_model()
        if all_staff:
            yield from model.objects.filter(is_staff=True).order_by("username")
        for name in usernames:
            user = model.objects.filter(username=name).first()
            if user is None:
                raise CommandError(f"No user {name!r}.")
            yield user
        if not usernames and not all_staff:
            raise CommandError("Name the users: --user NAME (repeatable) or --all-staff.")
