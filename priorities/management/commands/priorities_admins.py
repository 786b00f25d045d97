"""The priority admins (priorities.admins): who may accept, refuse and manage GPU priority requests, and get mail."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from priorities import admins


class Command(BaseCommand):
    help = (
        "Manage the GPU priority admins (the priority-decisions group: they accept, refuse and change "
        "requests; other staff read the panel): add <username> [<email>] | list | remove <username>."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Make a portal user an admin (the address is for priority mail).")
        add.add_argument("username")
        add.add_argument("email", nargs="?", default="")
        sub.add_parser("list", help="List the admins.")
        remove = sub.add_parser("remove", help="Remove an admin.")
        remove.add_argument("username")

    def handle(self, *, action: str, **options: Any) -> None:
        name = options["username"] if action != "list" else ""
        if action == "add":
            if options["email"]:
                try:
                    validate_email(options["email"])
                except ValidationError:
                    raise CommandError(f"not an email address: {options['email']!r}") from None
            try:
                added = admins.add(name, options["email"])
            except admins.NotAUser:
                raise CommandError(
                    f"{name} has no portal account yet: they sign in once, then run this again"
                ) from None
            self.stdout.write(f"{'added' if added else 'updated'} {name}")
            if not next(a for a in admins.admins() if a.username == name).is_staff:
                self.stdout.write(self.style.WARNING(f"{name} is not staff: the panel opens once they are"))
        elif action == "list":
            found = admins.admins()
            if not any(a.decides for a in found):
                self.stdout.write("no admins: only superusers decide")
            if not any(a.mailed for a in found):
                self.stdout.write("nobody listed for mail: it goes to every staff user with an email")
            for admin in found:
                notes = [] if admin.is_staff else ["not staff"]
                notes += [] if admin.decides else ["mail only: run add to let them decide"]
                notes += [] if admin.mailed else ["decides (staff_powers), no mail"]
                self.stdout.write("\t".join([admin.username, admin.email or "-", *notes]))
        else:
            if not admins.remove(name):
                raise CommandError(f"{name} is not an admin")
            self.stdout.write(f"removed {name}")
