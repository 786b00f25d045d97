"""Who gets mail about new GPU priority requests (when nobody is listed, every staff user with an email)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from priorities.models import PriorityAdmin


class Command(BaseCommand):
    help = "Manage the GPU priority admins: add <username> <email> | list | remove <username>."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add (or update) an admin.")
        add.add_argument("username")
        add.add_argument("email")
        sub.add_parser("list", help="List the admins.")
        remove = sub.add_parser("remove", help="Remove an admin.")
        remove.add_argument("username")

    def handle(self, *, action: str, **options: Any) -> None:
        if action == "add":
            try:
                validate_email(options["email"])
            except ValidationError:
                raise CommandError(f"not an email address: {options['email']!r}") from None
            _admin, created = PriorityAdmin.objects.update_or_create(
                username=options["username"], defaults={"email": options["email"]}
            )
            self.stdout.write(f"{'added' if created else 'updated'} {options['username']} <{options['email']}>")
        elif action == "list":
            admins = list(PriorityAdmin.objects.all())
            if not admins:
                self.stdout.write("no admins: mail about new requests goes to every staff user with an email")
            for admin in admins:
                self.stdout.write(f"{admin.username}\t{admin.email}")
        else:
            deleted, _rows = PriorityAdmin.objects.filter(username=options["username"]).delete()
            if not deleted:
                raise CommandError(f"{options['username']} is not an admin")
            self.stdout.write(f"removed {options['username']}")
