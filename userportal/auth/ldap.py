"""LDAP password login with django-auth-ldap against the cluster's directory.

Its settings come from userportal.auth.ldap_settings (read while settings load, so that module
imports nothing from django.contrib.auth).
"""

from __future__ import annotations

from typing import Any

from django_auth_ldap.backend import LDAPBackend

from userportal.auth.external import has_local_password
from userportal.auth.identity import cluster_username, may_sign_in_externally


class PortalLDAPBackend(LDAPBackend):
    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        username = cluster_username(username)
        if not username or not password:
            return None
        existing = self.get_user_model().objects.filter(username__iexact=username).first()
        if existing is not None and (not may_sign_in_externally(existing) or has_local_password(existing)):
            return None  # a directory entry never opens a local account (superuser, service, with a password)
        return super().authenticate(request, username=username, password=password, **kwargs)
