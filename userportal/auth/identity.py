"""Which cluster username an external identity (Shibboleth, OIDC, LDAP) stands for.

An identity from an identity provider names a user in some realm (alice@example.org). Only the
realms in PORTAL_ALLOWED_REALMS map to cluster usernames: a name from any other realm is refused,
so owner@evil.example can never become the local user "owner". Usernames are lower-cased and
must look like Unix usernames. External sign-ins never open a superuser's or a service account's
session: those are local accounts only. Which account an identity opens is bound once
(userportal.auth.external).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

USERNAME = re.compile(r"[a-z_][a-z0-9_.-]{0,63}")


def _realm_and_name(raw: str | None) -> tuple[str, str] | None:
    """`Alice@Example.org` -> ("example.org", "alice"), `bob` -> ("", "bob"); None for a realm not allowed."""
    name, at, realm = (raw or "").strip().rpartition("@")
    if not at:
        name, realm = realm, ""
    elif realm.lower() not in {r.lower() for r in settings.PORTAL_ALLOWED_REALMS}:
        return None
    name = name.lower()
    return (realm.lower(), name) if USERNAME.fullmatch(name) else None


def cluster_username(raw: str | None) -> str | None:
    """`alice@example.org` -> `alice` (when example.org is an allowed realm); None when refused."""
    found = _realm_and_name(raw)
    return found[1] if found else None


def realm_and_name(raw: str | None) -> tuple[str, str] | None:
    """REMOTE_USER `Alice@Example.org` -> ("example.org", "alice"); None when refused.

    A name without a realm is accepted only with PORTAL_ALLOW_BARE_USERNAMES (its realm is then
    ""): otherwise a web server passing bare names would bypass PORTAL_ALLOWED_REALMS.
    """
    found = _realm_and_name(raw)
    if found and not found[0] and not settings.PORTAL_ALLOW_BARE_USERNAMES:
        return None
    return found


def may_sign_in_externally(user: Any) -> bool:
    """Superusers and service accounts sign in with local credentials or tokens only."""
    from userportal.access import is_service_account

    return not user.is_superuser and not is_service_account(user)


def axes_username(request: Any, credentials: dict[str, Any] | None) -> str:
    """The name django-axes counts failures under: the same for `Owner`, `owner@realm` and `owner`."""
    raw = str((credentials or {}).get("username", "") or "")
    return cluster_username(raw) or raw.strip().lower()
