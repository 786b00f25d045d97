"""`manage.py drf_create_token <username> [-r]`: TrailblazingTurtle's documented command, kept working.

DRF's own command printed the user's one stored key. Keys are stored hashed here, so an existing
key can never be shown again: each run issues a new token and prints its key once; `-r` revokes
the user's previous tokens first (the uploader's old key stops working).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from userportal.tokens import add_expiry_arguments, expiry_text, issue_token, revoke_tokens, token_expiry


class Command(BaseCommand):
    help = (
        "Issue a new API token for USERNAME and print its key (shown this once: only its hash is stored). "
        "-r/--reset revokes the user's previous tokens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "-r", "--reset", action="store_true", help="Revoke the user's previous tokens before issuing the new one."
        )
        parser.add_argument("--name", default="", help="What the token is for (shown in the admin).")
        add_expiry_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Say what would be done; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Cannot create the Token: user {username} does not exist")
        expires = token_expiry(options)
        if options["dry_run"]:
            reset = " after revoking the previous tokens" if options["reset"] else ""
            self.stderr.write(f"dry run: would issue a new token for user {username}{reset}")
            return
        with transaction.atomic():
            revoked = revoke_tokens(user) if options["reset"] else 0
            _token, key = issue_token(user, name=options["name"], expires=expires)
        if revoked:
            self.stderr.write(f"Revoked {revoked} previous token(s) of user {username}")
        # DRF's wording, which scripts written for TrailblazingTurtle parse.
        self.stderr.write(f"The token {expiry_text(expires)}.")
        self.stdout.write(f"Generated token {key} for user {username}")
