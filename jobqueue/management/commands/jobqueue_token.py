"""Job-queue tokens: create, list, revoke, revoke-user (the seed server's token_manager.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from jobqueue import tokens
from jobqueue.models import JobToken
from userportal.audit import audit


class Command(BaseCommand):
    help = (
        "Manage job-queue API tokens. `create <user> [--days N] [--admin]` prints a new token once and "
        "revokes the user's others; `list`; `revoke <token>`; `revoke-user <user>`. --dry-run writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Issue a token (at most JOBQUEUE_TOKEN_MAX_DAYS days).")
        create.add_argument("user")
        create.add_argument("--days", type=int, default=None)
        create.add_argument("--admin", action="store_true", help="A queue administrator (the user must be staff).")
        create.add_argument("--dry-run", action="store_true")
        listing = sub.add_parser("list", help="Usable tokens (with --all, revoked and expired ones too).")
        listing.add_argument("--all", action="store_true")
        revoke = sub.add_parser("revoke", help="Revoke one token, given the token itself.")
        revoke.add_argument("token")
        revoke.add_argument("--dry-run", action="store_true")
        revoke_user = sub.add_parser("revoke-user", help="Revoke every token of a user.")
        revoke_user.add_argument("user")
        revoke_user.add_argument("--dry-run", action="store_true")

    def _user(self, name: str) -> Any:
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"No portal user {name!r} (they appear after their first sign-in).")
        return user

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, "handle_" + action.replace("-", "_"))(**options)

    def handle_create(self, *, user: str, days: int | None, admin: bool, dry_run: bool, **_: Any) -> None:
        account = self._user(user)
        max_days = settings.JOBQUEUE_TOKEN_MAX_DAYS
        if days is not None and not 1 <= days <= max_days:
            raise CommandError(f"--days must be from 1 to {max_days}.")
        if admin and not account.is_staff:
            raise CommandError(f"{user} is not staff: queue administrators must be portal staff.")
        if dry_run:
            self.stdout.write(f"Would issue a {'admin ' if admin else ''}token to {user} for {days or max_days} days.")
            return
        token, key = tokens.issue_token(account, days=days, admin=admin)
        audit(
            "jobqueue.token_create",
            actor="manage.py",
            target=f"user:{user}",
            extra={"prefix": token.prefix, "admin": admin},
        )
        self.stdout.write(key)
        self.stderr.write(f"Token for {user} (admin: {admin}) expires {token.expires:%Y-%m-%d %H:%M %Z}.")

    def handle_list(self, *, all: bool, **_: Any) -> None:
        now = timezone.now()
        rows = JobToken.objects.select_related("user").order_by("user__username", "-created")
        if not all:
            rows = rows.filter(revoked=False, expires__gt=now)
        for token in rows:
            state = "revoked" if token.revoked else ("expired" if token.expires <= now else "active")
            days_left = max(0, (token.expires - now).days)
            self.stdout.write(
                f"{token.user.get_username()}\t{token.prefix}…\tadmin={'yes' if token.is_admin else 'no'}\t"
                f"created={token.created:%Y-%m-%d %H:%M}\texpires={token.expires:%Y-%m-%d %H:%M}\t"
                f"days_left={days_left}\t{state}"
            )

    def handle_revoke(self, *, token: str, dry_run: bool, **_: Any) -> None:
        found = tokens.find_token(token)
        if found is None:
            raise CommandError("No such token.")
        if dry_run:
            self.stdout.write(f"Would revoke {found.prefix}… of {found.user.get_username()}.")
            return
        tokens.revoke_key(token)
        audit(
            "jobqueue.token_revoke",
            actor="manage.py",
            target=f"user:{found.user.get_username()}",
            extra={"prefix": found.prefix},
        )
        self.stdout.write(f"Revoked {found.prefix}… of {found.user.get_username()}.")

    def handle_revoke_user(self, *, user: str, dry_run: bool, **_: Any) -> None:
        account = self._user(user)
        if dry_run:
            count = JobToken.objects.filter(user=account, revoked=False).count()
            self.stdout.write(f"Would revoke {count} token(s) of {user}.")
            return
        count = tokens.revoke_user(account)
        audit("jobqueue.token_revoke", actor="manage.py", target=f"user:{user}", extra={"count": count})
        self.stdout.write(f"Revoked {count} token(s) of {user}.")
