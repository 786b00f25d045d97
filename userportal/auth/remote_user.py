"""Shibboleth-style login: Apache (mod_shib) sets REMOTE_USER and an affiliation attribute.

The username is the eppn with its realm stripped, for the realms in PORTAL_ALLOWED_REALMS only
(alice@example.org -> alice; see userportal.auth.identity); the (realm, name) is bound to that
account at the first sign-in (userportal.auth.external). Staff status follows the affiliation
on every request: granted when one of the user's affiliations is in PORTAL_STAFF_AFFILIATIONS,
removed when none is any more. Superusers and service accounts never sign in this way.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from userportal.auth.external import bind, bound_username
from userportal.auth.identity import realm_and_name
from userportal.models import ExternalIdentity


def affiliations(request: HttpRequest) -> set[str]:
    """Shibboleth joins multi-valued attributes with ';'."""
    raw = request.META.get(settings.PORTAL_AFFILIATION_ATTRIBUTE, "") or ""
    return {value.strip().lower() for value in str(raw).split(";") if value.strip()}


def staff_from_affiliation(request: HttpRequest) -> bool:
    wanted = {value.lower() for value in settings.PORTAL_STAFF_AFFILIATIONS}
    return bool(wanted & affiliations(request))


def sync_staff(user: Any, is_staff: bool) -> None:
    if user.is_superuser:
        is_staff = True
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


class ShibbolethBackend(RemoteUserBackend):
    """Opens the account bound to the (realm, name) of REMOTE_USER (userportal.auth.external)."""

    create_unknown_user = True

    def clean_username(self, username: str) -> str:
        # RemoteUserMiddleware keeps a session only while this equals the signed-in username:
        # the account bound to this identity, so alice@partner.edu never continues alice's session.
        found = realm_and_name(username)
        return bound_username(ExternalIdentity.Kind.REMOTE_USER, *found) if found else ""

    def authenticate(self, request: HttpRequest, remote_user: str) -> Any:  # type: ignore[override]
        found = realm_and_name(remote_user)
        if found is None:
            return None  # a realm we do not serve, a bare name, or not a username
        realm, name = found
        user = bind(
            request,
            kind=ExternalIdentity.Kind.REMOTE_USER,
            issuer=realm,
            subject=name,
            username=name,
            create=lambda username: self._create(request, username),
        )
        if user is None or not self.user_can_authenticate(user):
            return None
        if request is not None:
            sync_staff(user, staff_from_affiliation(request))
        return user

    def _create(self, request: HttpRequest, username: str) -> Any:
        user = get_user_model().objects.create_user(username)  # no usable password: not a local account
        return self.configure_user(request, user, created=True)


class ShibbolethRemoteUserMiddleware(RemoteUserMiddleware):
    """RemoteUserMiddleware reading the configured variable, active only with PORTAL_REMOTE_USER."""

    force_logout_if_no_header = True
    # Sync only: Django's async path reads the header from HTTP_* request headers, which a client
    # could set itself. The portal runs under WSGI (mod_wsgi, gunicorn).
    sync_capable = True
    async_capable = False  # type: ignore[assignment]  # deliberately narrower than Django's base

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        # RemoteUserMiddleware declares `header` on the class; ours comes from settings.
        self.header = settings.PORTAL_REMOTE_USER_HEADER  # type: ignore[misc]

    def process_request(self, request: HttpRequest) -> None:
        if not settings.PORTAL_REMOTE_USER:
            return
        if not hasattr(request, "user"):
            raise ImproperlyConfigured("ShibbolethRemoteUserMiddleware needs AuthenticationMiddleware before it.")
        super().process_request(request)
        # Staff follows the affiliation on every request, not only at the first login.
        user = request.user
        if user.is_authenticated and self.header in request.META:
            sync_staff(user, staff_from_affiliation(request))


class DevelopmentRemoteUserMiddleware:
    """DEBUG only: `REMOTE_USER=alice affiliation=staff@example.org manage.py runserver`."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.DEBUG and settings.PORTAL_DEV_REMOTE_USER:
            request.META[settings.PORTAL_REMOTE_USER_HEADER] = settings.PORTAL_DEV_REMOTE_USER
            request.META[settings.PORTAL_AFFILIATION_ATTRIBUTE] = settings.PORTAL_DEV_AFFILIATION
        response: HttpResponse = self.get_response(request)
        return response
