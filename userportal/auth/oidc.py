"""OpenID Connect login (mozilla-django-oidc) for Keycloak, Auth0, Google and the like.

The username comes from a configurable claim (OIDC_USERNAME_CLAIM, realm stripped for the allowed
realms only; an email claim must be verified) and staff status from another (OIDC_STAFF_CLAIM
contains one of OIDC_STAFF_VALUES), refreshed at each login. Superusers and service accounts never
sign in this way.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from userportal.auth.identity import cluster_username, may_sign_in_externally


def username_from_claims(claims: dict[str, Any]) -> str:
    value = claims.get(settings.OIDC_USERNAME_CLAIM) or ""
    if settings.OIDC_USERNAME_CLAIM == "email" and claims.get("email_verified") is not True:
        return ""  # an unverified address proves nothing about who this is
    return cluster_username(str(value)) or ""


def staff_from_claims(claims: dict[str, Any]) -> bool:
    value = claims.get(settings.OIDC_STAFF_CLAIM)
    if value is None:
        return False
    values = {str(v) for v in value} if isinstance(value, list | tuple | set) else {str(value)}
    return bool(values & set(settings.OIDC_STAFF_VALUES))


class PortalOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        username = username_from_claims(claims)
        if not username:
            return False
        existing = self.UserModel.objects.filter(username=username).first()
        return existing is None or may_sign_in_externally(existing)

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        username = username_from_claims(claims)
        if not username:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(username=username)

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = self.UserModel.objects.create_user(
            username_from_claims(claims),
            email=str(claims.get("email") or "")[:254],
            first_name=str(claims.get("given_name") or "")[:150],
        )
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        is_staff = staff_from_claims(claims) or user.is_superuser
        changed = []
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            changed.append("is_staff")
        if claims.get("email") and user.email != claims["email"]:
            user.email = claims["email"]
            changed.append("email")
        if changed:
            user.save(update_fields=changed)
        return user
