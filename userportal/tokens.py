"""API tokens stored hashed, and the DRF authentication class that accepts them.

A key is 44 random URL-safe characters from :mod:`secrets`. The portal keeps its SHA-256 and its
first characters (``prefix``, to tell tokens apart), never the key: it is printed once when issued.
Requests send it as ``Authorization: Token <key>`` (the header of TrailblazingTurtle's job-script
uploader and of DRF's TokenAuthentication) or ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import HTTP_HEADER_ENCODING, exceptions
from rest_framework.authentication import BaseAuthentication

from userportal.models import ApiToken

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KEY_BYTES = 33  # 44 characters of token_urlsafe: 264 random bits
PREFIX_LENGTH = 8
KEYWORDS = (b"token", b"bearer")
# last_used is a hint for operators ("is this token still used?"), not an audit log: writing it on
# every request of a busy uploader would turn each upload into two writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_KEY_LENGTH = 256  # longer headers are refused before hashing


def hash_key(key: str) -> str:
    """The SHA-256 (hex) under which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def add_expiry_arguments(parser: Any) -> None:
    """--expires-days N and --no-expiry, for the commands that issue tokens."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--expires-days",
        type=int,
        default=None,
        help="Expire the token after this many days (default: the API_TOKEN_DAYS setting).",
    )
    group.add_argument("--no-expiry", action="store_true", help="A token that never expires (revoke it by hand).")


def token_expiry(options: dict[str, Any]) -> datetime | None:
    """When a token issued with these command options expires (None: never); CommandError on bad values."""
    from django.core.management.base import CommandError

    if options.get("no_expiry"):
        return None
    days = options.get("expires_days")
    if days is None:
        days = settings.API_TOKEN_DAYS
        return timezone.now() + timedelta(days=days) if days else None
    if days < 1:
        raise CommandError("--expires-days must be at least 1 (use --no-expiry for a token that never expires).")
    return timezone.now() + timedelta(days=days)


def expiry_text(expires: datetime | None) -> str:
    """ "expires on 2027-11-22 10:00 UTC" or "never expires", for the commands' messages."""
    if expires is None:
        return "never expires"
    return f"expires on {expires.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def new_key() -> str:
    """A fresh random key that never starts with "-", so no command line mistakes it for an option."""
    while True:
        key = secrets.token_urlsafe(KEY_BYTES)
        if not key.startswith("-"):
            return key


def issue_token(
    user: User, *, name: str = "", expires: datetime | None = None, cluster: str = ""
) -> tuple[ApiToken, str]:
    """Create a token for `user` (bound to `cluster` if given); return it with its key, shown this once."""
    key = new_key()
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key), expires=expires, cluster=cluster
    )
    return token, key


# A user's personal token (created on the jobstats command's page) reads only (GET, HEAD and
# OPTIONS), only the jobstats command's endpoint, and only the user's own jobs there (no `?user=`
# of someone else, even for staff: they use their session or a regular API token for that). Kept
# in a file on a shared login node, it can do less harm than the user's session.
PERSONAL_NAME = "personal (jobstats command)"
READ_ONLY_METHODS = ("GET", "HEAD", "OPTIONS")
PERSONAL_ROUTES = ("jobstats:api-jobstats",)


def personal_tokens(user: User) -> list[ApiToken]:
    """The user's live (neither revoked nor expired) personal tokens, newest first."""
    now = timezone.now()
    live = ApiToken.objects.filter(user=user, name=PERSONAL_NAME, revoked=False)
    return [token for token in live.filter(Q(expires__isnull=True) | Q(expires__gt=now))]


def issue_personal_token(user: User) -> tuple[ApiToken, str]:
    """A new read-only personal token for `user` (API_TOKEN_DAYS), revoking their previous ones."""
    revoke_personal_tokens(user)
    days = settings.API_TOKEN_DAYS
    return issue_token(user, name=PERSONAL_NAME, expires=timezone.now() + timedelta(days=days) if days else None)


def revoke_personal_tokens(user: User) -> int:
    """Revoke the user's personal tokens (their cached copies too); return how many."""
    tokens = ApiToken.objects.filter(user=user, name=PERSONAL_NAME, revoked=False)
    _forget_cached(list(tokens.values_list("key_hash", flat=True)))
    return tokens.update(revoked=True)


def revoke_tokens(user: User, *, keep: ApiToken | None = None) -> int:
    """Revoke every live token of `user` (but `keep`); return how many were revoked."""
    tokens = ApiToken.objects.filter(user=user, revoked=False)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    _forget_cached(list(tokens.values_list("key_hash", flat=True)))
    return tokens.update(revoked=True)


# A token row read from the database (with its user and the user's groups) is trusted this many
# seconds, in the shared cache and in each process's memory, so a busy uploader's requests read
# neither a row nor the cache: revoking or expiring it, or deactivating its user, takes effect
# within this many seconds everywhere (revoke_tokens: at once in its own process and the cache).
TOKEN_CACHE_SECONDS = 10
# digest -> (token, the time.time() until which it is trusted): this process's copies.
_local: dict[str, tuple[ApiToken, float]] = {}


def _cache_key(digest: str) -> str:
    return f"apitoken:{digest}"


def _forget_cached(digests: list[str]) -> None:
    cache.delete_many([_cache_key(digest) for digest in digests])
    for digest in digests:
        _local.pop(digest, None)


def forget_cached_tokens() -> None:
    """Drop this process's copies of tokens (tests, after editing token rows and clearing the cache)."""
    _local.clear()


def find_token(key: str) -> ApiToken | None:
    """The token whose key is `key`, revoked and expired ones included; None if there is none.

    The lookup is by hash: the database compares digests, never the key, so its timing says
    nothing about the key. The digest is compared again in constant time for good measure.
    A found token (user and groups included) is trusted TOKEN_CACHE_SECONDS from its row's read:
    this process's copy first, then the shared cache's, under its digest.
    """
    digest = hash_key(key)
    now = time.time()
    token, trusted_until = _local.get(digest, (None, 0.0))
    if token is None or now >= trusted_until:
        token = cache.get(_cache_key(digest))
        # The copy's age counts from its row's read: touch() re-sets it, which must not extend it.
        trusted_until = getattr(token, "_read_at", 0.0) + TOKEN_CACHE_SECONDS
        if token is None or now >= trusted_until:
            token = (
                ApiToken.objects.select_related("user").prefetch_related("user__groups").filter(key_hash=digest).first()
            )
            if token is None:
                _local.pop(digest, None)
                return None
            token._read_at = now  # type: ignore[attr-defined]  # pickled with it
            trusted_until = now + TOKEN_CACHE_SECONDS
            cache.set(_cache_key(digest), token, TOKEN_CACHE_SECONDS)
        if len(_local) > 1000:  # unknown keys are not kept; so many live tokens in one process: start over
            _local.clear()
        _local[digest] = (token, trusted_until)
    if not hmac.compare_digest(token.key_hash, digest):
        return None
    return _for_request(token)


# What Django's ModelBackend caches on a user object for one request.
PERMISSION_CACHES = ("_perm_cache", "_user_perm_cache", "_group_perm_cache")


def _for_request(token: ApiToken) -> ApiToken:
    """A kept token for one more request: its user's permissions, which has_perm caches on the
    object, are read again (a grant takes effect at once, as when each request unpickled a copy)."""
    state = token.user.__dict__
    for name in PERMISSION_CACHES:
        state.pop(name, None)
    return token


def touch(token: ApiToken, now: datetime | None = None) -> None:
    """Record a use of `token`, at most once per LAST_USED_RESOLUTION (and in its cached copy)."""
    now = now or timezone.now()
    if token.last_used is not None and now - token.last_used < LAST_USED_RESOLUTION:
        return
    # The condition in the UPDATE keeps concurrent requests from writing the row more than once.
    stale = Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_RESOLUTION)
    ApiToken.objects.filter(stale, pk=token.pk).update(last_used=now)
    token.last_used = now
    kept = _local.get(token.key_hash)
    if kept is not None:
        kept[0].last_used = now
    remaining = getattr(token, "_read_at", 0.0) + TOKEN_CACHE_SECONDS - time.time()
    if remaining > 0:  # the copy keeps the age of its row's read
        cache.set(_cache_key(token.key_hash), token, remaining)


def authorization_header(request: Any) -> bytes:
    """The Authorization header as bytes, as DRF's get_authorization_header reads it, from
    request.META: building request.headers (every header's name) costs more than the token check."""
    header = request.META.get("HTTP_AUTHORIZATION", b"")
    return header.encode(HTTP_HEADER_ENCODING) if isinstance(header, str) else header


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` or ``Bearer <key>`` against hashed ApiToken rows.

    A request without such a header is left to the next authentication class (sessions). A bad,
    revoked or expired key, or the key of an inactive user, is a 401 with WWW-Authenticate.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        parts = authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) == 1:
            raise exceptions.AuthenticationFailed(_("Invalid token header. No credentials provided."))
        if len(parts) > 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header. Token string should not contain spaces."))
        try:
            key = parts[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed(
                _("Invalid token header. Token string should not contain invalid characters.")
            ) from None
        user, token = self.authenticate_credentials(key)
        if token.name == PERSONAL_NAME:
            self.check_personal(request, user)
        return user, token

    @staticmethod
    def check_personal(request: Any, user: Any) -> None:
        """A personal token reads the user's own jobs on the jobstats command's endpoint, nothing else."""
        if request.method not in READ_ONLY_METHODS:
            raise exceptions.PermissionDenied(_("A personal token only reads."))
        match = getattr(request, "resolver_match", None)
        if match is None:
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
        if match is None or match.view_name not in PERSONAL_ROUTES:
            raise exceptions.PermissionDenied(_("A personal token only serves the jobstats command."))
        asked = request.GET.get("user", "")
        if asked and asked != user.get_username():
            raise exceptions.PermissionDenied(_("A personal token only reads your own jobs."))

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = find_token(key) if 0 < len(key) <= MAX_KEY_LENGTH else None
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        now = timezone.now()
        if token.revoked:
            raise exceptions.AuthenticationFailed(_("This token has been revoked."))
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed(_("This token has expired."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        touch(token, now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        # Returning a challenge makes DRF answer 401 (not 403) to unauthenticated API requests.
        return f'Token realm="{self.www_authenticate_realm}", Bearer realm="{self.www_authenticate_realm}"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema (drf-spectacular) describes ApiTokenAuthentication."""

    target_class = "userportal.tokens.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Token <key>` or `Bearer <key>`; service keys come from `manage.py create_service_account`, "
                "a user's personal key from the jobstats command's page (reads only the user's own jobs, "
                "and only `/api/jobstats/<job id>/`)."
            ),
        }
