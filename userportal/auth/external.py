"""External identities bound to accounts: who may open which account from outside.

Shibboleth names a person by (realm, name), OpenID Connect by (issuer, subject). The first
sign-in of an identity binds it to the account of its cluster username, and later sign-ins
follow the binding, not the name. An identity is refused (and the refusal audited) when its
username already belongs to someone else:

- an account bound to another identity of the same source (alice@partner.edu when alice is
  alice@example.org; a second OIDC subject with the same preferred_username), or of the other
  source unless PORTAL_LINK_IDENTITY_SOURCES says both sources name the same people;
- a local account: one with a password, a superuser or a service account. Accounts an earlier
  external sign-in created have no password, so they are adopted by their first identity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from userportal.audit import audit
from userportal.auth.identity import may_sign_in_externally
from userportal.models import ExternalIdentity

logger = logging.getLogger(__name__)


def has_local_password(user: Any) -> bool:
    """A password the sign-in form accepts ('' from RemoteUserBackend's get_or_create never matches)."""
    return bool(user.password) and bool(user.has_usable_password())


def _dev_login() -> bool:
    # The DEBUG-only development login stands for whoever the developer names, local accounts included.
    return bool(settings.DEBUG and settings.PORTAL_DEV_REMOTE_USER)


def _refusal(user: Any, kind: str) -> str:
    """Why an identity of `kind` may not be bound to the existing `user` ('' when it may)."""
    if not may_sign_in_externally(user):
        return "a superuser or service account"
    if not user.is_active:
        return "an inactive account"
    if has_local_password(user) and not _dev_login():
        return "a local account (it has a password)"
    kinds = set(user.external_identities.values_list("kind", flat=True))
    if kind in kinds:
        return "bound to another identity"
    if kinds and not settings.PORTAL_LINK_IDENTITY_SOURCES:
        return "bound to an identity of another sign-in source"
    return ""


def _refuse(request: Any, kind: str, issuer: str, subject: str, username: str, reason: str) -> None:
    logger.warning("external identity %s %s@%s refused for %r: %s", kind, subject, issuer, username, reason)
    # Once an hour per identity: the REMOTE_USER middleware tries again on every request.
    if cache.add(f"identity-refused:{kind}:{issuer}:{subject}"[:250], 1, 3600):
        extra = {"kind": kind, "issuer": issuer, "subject": subject, "reason": reason}
        audit("auth.identity_refused", request=request, actor=username, status="refused", extra=extra)


def bind(
    request: Any, *, kind: str, issuer: str, subject: str, username: str, create: Callable[[str], Any]
) -> Any | None:
    """The account of this identity: the bound one, a new one, or an adopted one; None when refused."""
    if not subject or not username:
        return None
    identity = ExternalIdentity.objects.select_related("user").filter(kind=kind, issuer=issuer, subject=subject).first()
    now = timezone.now()
    if identity is not None:
        user = identity.user
        if not may_sign_in_externally(user) or not user.is_active:
            return None
        ExternalIdentity.objects.filter(pk=identity.pk).update(last_login=now)
        return user
    existing = get_user_model().objects.filter(username__iexact=username).first()
    reason = _refusal(existing, kind) if existing is not None else ""
    if reason:
        _refuse(request, kind, issuer, subject, username, reason)
        return None
    try:
        with transaction.atomic():
            user = existing if existing is not None else create(username)
            ExternalIdentity.objects.create(user=user, kind=kind, issuer=issuer, subject=subject, last_login=now)
    except IntegrityError:  # a concurrent first sign-in took the name or the identity
        _refuse(request, kind, issuer, subject, username, "bound concurrently to another identity")
        return None
    return user


def bound_username(kind: str, issuer: str, subject: str) -> str:
    """The username this identity is bound to ('' when unbound)."""
    found = ExternalIdentity.objects.filter(kind=kind, issuer=issuer, subject=subject)
    return str(found.values_list("user__username", flat=True).first() or "")
