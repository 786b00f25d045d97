from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEV_USERS = (
    # username, password, is_staff, is_superuser
    ("alice", "demo-alice", False, False),
    ("admin", "demo-admin", True, True),
)


class Command(BaseCommand):
    help = (
        "Create the development users alice (a cluster user of the demo data) and admin (staff and "
        "superuser) with the passwords in README.md. Refuses to run unless PORTAL_DEBUG is true."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("create_dev_users only runs with PORTAL_DEBUG=true: it sets well-known passwords.")
        User = get_user_model()
        for username, password, is_staff, is_superuser in DEV_USERS:
            user, created = User.objects.get_or_create(username=username)
            user.is_staff = is_staff
            user.is_superuser = is_superuser
            user.set_password(password)
            user.save()
            role = "staff" if is_staff else "user"
            verb = "created" if created else "updated"
            self.stdout.write(f"{verb} {role} {username!r} with password {password!r}")
