"""`manage.py create_service_account <name>`: a user for a machine (the Slurm job-script uploader).

The account is in the "service-accounts" group (Rule.SERVICE), is not staff and has no usable
password: it can only use the API with the token printed here. Safe to re-run: for an existing
service account it issues a new token (and with --reset revokes the old ones); it refuses to turn
an existing human account into a service account.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from userportal.access import SERVICE_GROUP, is_service_account
from userportal.tokens import add_expiry_arguments, expiry_text, issue_token, revoke_tokens, token_expiry


class Command(BaseCommand):
    help = (
        f"Create a service account NAME (group {SERVICE_GROUP!r}, not staff, no password) and print a new API "
        "token for it on standard output (the key alone, shown this once). Re-running issues another token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Username of the service account, e.g. slurm-prolog-narval.")
        parser.add_argument("-r", "--reset", action="store_true", help="Revoke the account's previous tokens.")
        parser.add_argument("--token-name", default="", help="What the token is for (shown in the admin).")
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--cluster",
            default=None,
            help="The cluster whose job scripts the token uploads (required when SLURM_CLUSTERS names several; "
            "a single-cluster site's token is bound to its cluster).",
        )
        where.add_argument(
            "--any-cluster", action="store_true", help="A token that may upload job scripts for every cluster."
        )
        add_expiry_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Say what would be done; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name:
            raise CommandError("The service account needs a name.")
        User = get_user_model()
        user = User.objects.filter(username=name).first()
        if user is not None and not is_service_account(user):
            raise CommandError(f"User {name} exists and is not a service account; choose another name.")
        expires = token_expiry(options)
        cluster = self._cluster(options)
        if options["dry_run"]:
            what = "issue a new token for the existing" if user else "create the"
            self.stderr.write(f"dry run: would {what} service account {name}")
            return
        with transaction.atomic():
            if user is None:
                user = User(username=name, is_staff=False, is_superuser=False)
                user.full_clean(exclude=["password"])
                user.set_unusable_password()
                user.save()
                created = True
            else:
                created = False
            group, _ = Group.objects.get_or_create(name=SERVICE_GROUP)
            user.groups.add(group)
            revoked = revoke_tokens(user) if options["reset"] else 0
            _token, key = issue_token(
                user, name=options["token_name"] or "service account", expires=expires, cluster=cluster
            )
        verb = "Created service account" if created else "Service account exists:"
        extra = f"; revoked {revoked} previous token(s)" if revoked else ""
        self.stderr.write(
            f"{verb} {name}{extra}. Its new API token is on standard output (shown this once);"
            f" it {expiry_text(expires)} and uploads for {f'cluster {cluster}' if cluster else 'every cluster'}."
        )
        self.stdout.write(key)

    @staticmethod
    def _cluster(options: dict[str, Any]) -> str:
        clusters = list(settings.SLURM_CLUSTERS)
        if options["any_cluster"]:
            return ""
        cluster = options["cluster"]
        if cluster is None:
            if len(clusters) > 1:
                raise CommandError(
                    f"SLURM_CLUSTERS names several clusters ({', '.join(clusters)}): say which one this uploader "
                    "serves with --cluster NAME (or --any-cluster)."
                )
            return clusters[0]
        if cluster not in clusters:
            raise CommandError(f"Unknown cluster {cluster!r}; SLURM_CLUSTERS names {', '.join(clusters)}.")
        return cluster
