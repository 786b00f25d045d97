"""OpenID Connect login (mozilla-django-oidc) for Keycloak, Auth0, Google and the like.

The username comes from a configurable claim (OIDC_USERNAME_CLAIM, realm stripped for the allowed
realms only; an email claim must be verified) and staff status from another (OIDC_STAFF_CLAIM
contains one of OIDC_STAFF_VALUES), refreshed at each login. The ID token's (issuer, subject) is
bound to that account at the first sign-in (userportal.auth.external); superusers, service
accounts and accounts with a local password never sign in this way. The provider's endpoints are
the settings', or its discovery document's (userportal.auth.oidc_discovery) where they are empty.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from userportal.auth.external import bind
from userportal.auth.identity import cluster_username
from userportal.auth.oidc_discovery import DiscoveryUnavailable, endpoint
from userportal.models import ExternalIdentity


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
    """Opens the account bound to the ID token's (issuer, subject) (userportal.auth.external)."""

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        # Only the provider's callback (code and state) needs the endpoints: a password sign-in
        # through the same backends never waits for the discovery document.
        if request is not None and request.GET.get("code") and request.GET.get("state"):
            try:
                self.OIDC_OP_TOKEN_ENDPOINT = endpoint("OIDC_OP_TOKEN_ENDPOINT")
                self.OIDC_OP_USER_ENDPOINT = endpoint("OIDC_OP_USER_ENDPOINT")
                if self.OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")) and self.OIDC_RP_IDP_SIGN_KEY is None:
                    self.OIDC_OP_JWKS_ENDPOINT = endpoint("OIDC_OP_JWKS_ENDPOINT")
            except DiscoveryUnavailable:
                return None  # logged by oidc_discovery; the callback view redirects to the sign-in page
        return super().authenticate(request, **kwargs)

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(username_from_claims(claims))

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        # The library's version finds the account by a claim (the email, or here the username):
        # ours by the identity, so the same name from another subject never opens this account.
        claims = self.get_userinfo(access_token, id_token, payload)
        subject = str(payload.get("sub") or "")
        if claims.get("sub") not in (None, subject):
            raise SuspiciousOperation("the userinfo answer is about another subject")  # OIDC Core 5.3.2
        if not self.verify_claims(claims):
            raise SuspiciousOperation("Claims verification failed")
        user = bind(
            getattr(self, "request", None),
            kind=ExternalIdentity.Kind.OIDC,
            issuer=str(payload.get("iss") or self.OIDC_OP_TOKEN_ENDPOINT),
            subject=subject,
            username=username_from_claims(claims),
            create=lambda username: self.create_user(claims),
        )
        return self.update_user(user, claims) if user is not None else None

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


class PortalOIDCAuthenticateView(OIDCAuthenticationRequestView):
    """The redirect to the provider, to its authorization endpoint (explicit or discovered).

    A provider whose discovery document cannot be read gives the "temporarily unavailable" page
    (DiscoveryUnavailable is a DataSourceError), not a redirect to nowhere.
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        self.OIDC_OP_AUTH_ENDPOINT = endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT")
        response: HttpResponse = super().get(request)
        return response
