"""Shibboleth-style login: Apache (mod_shib) sets REMOTE_USER and an affiliation attribute.

The username is the eppn with its realm stripped, for the realms in PORTAL_ALLOWED_REALMS only
(alice@example.org -> alice; see userportal.auth.identity). Staff status follows the affiliation
on every request: granted when one of the user's affiliations is in PORTAL_STAFF_AFFILIATIONS,
removed when none is any more. Superusers and service accounts never sign in this way.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from userportal.auth.identity import cluster_username, may_sign_in_externally


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
    create_unknown_user = True

    def clean_username(self, username: str) -> str:
        return cluster_username(username) or ""

    def authenticate(self, request: HttpRequest, remote_user: str) -> Any:  # type: ignore[override]
        if not self.clean_username(remote_user or ""):
            return None  # a realm we do not serve, or not a username
        user = super().authenticate(request, remote_user)
        if user is None or not may_sign_in_externally(user):
            return None
        if request is not None:
            sync_staff(user, staff_from_affiliation(request))
        return user


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
