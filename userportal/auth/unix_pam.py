"""PAM password login (python-pam): the cluster's own accounts, with the password of the login nodes.

PAM_SERVICE names the stack in /etc/pam.d (`login` by default; a site may write its own, e.g.
pam_sss or pam_ldap against the user directory). PAM checks the password and the account
(pam_acct_mgmt: expired, locked); credentials are never set and no session is opened. The
username is the cluster username (realm stripped for PORTAL_ALLOWED_REALMS, lower-cased, Unix-like;
userportal.auth.identity). A success opens the portal account of that name, created without a
usable password; staff status follows membership of PAM_STAFF_GROUPS (Unix groups, through NSS)
at each sign-in, when that setting names groups. A PAM name never opens a superuser, a service
account or an account with a local password (those sign in with their own password).

This backend only answers yes or no: throttling and lockout (django-axes, the first backend) and
the audit entries (userportal.signals) are the same as for every other password login.

pam_unix reads /etc/shadow: the portal's process needs the group `shadow` (mod_wsgi:
`WSGIDaemonProcess ... supplementary-groups=shadow`). Without it pam_unix falls back to its
helper, which checks only the calling user's own password, so every sign-in fails.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.db import IntegrityError, transaction

from userportal.auth.external import has_local_password
from userportal.auth.identity import cluster_username, may_sign_in_externally

logger = logging.getLogger(__name__)

# PAM modules read the password as a C string; nothing legitimate is longer than this.
MAX_PASSWORD_BYTES = 4096


def pam_check(username: str, password: str, service: str) -> tuple[bool, int, str]:
    """One PAM authentication and account check: (accepted, PAM's code, PAM's reason)."""
    import pam  # python-pam: libpam through ctypes, loaded at the first sign-in

    authenticator = pam.PamAuthenticator()  # one per call: an instance is not thread-safe
    accepted = authenticator.authenticate(username, password, service=service, resetcreds=False)
    return bool(accepted), int(authenticator.code), str(authenticator.reason or "")


def unix_groups(username: str) -> set[str]:
    """The names of the Unix groups of `username` (primary and supplementary), through NSS."""
    try:
        entry = pwd.getpwnam(username)
    except KeyError:
        return set()
    names = set()
    for gid in os.getgrouplist(username, entry.pw_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return names


class PortalPAMBackend(BaseBackend):
    """Signs a cluster user in when PAM_SERVICE accepts their username and password."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        name = cluster_username(username)
        if not name or not password or len(password.encode("utf-8", "replace")) > MAX_PASSWORD_BYTES:
            return None
        users = get_user_model()._default_manager
        existing = users.filter(username__iexact=name).first()
        if existing is not None and (not may_sign_in_externally(existing) or has_local_password(existing)):
            return None  # a local account: its own password, through ModelBackend
        service = str(settings.PAM_SERVICE)
        try:
            accepted, code, reason = pam_check(name, password, service)
        except (ImportError, OSError, AttributeError, ValueError) as exc:
            logger.error("PAM sign-in unavailable (PAM_SERVICE=%s): %s", service, exc)
            return None
        if not accepted:
            logger.info("PAM service %s refused %s: %s (code %d)", service, name, reason, code)
            return None
        user = existing if existing is not None else self._create(name)
        if user is None or not user.is_active:
            return None
        if settings.PAM_STAFF_GROUPS:
            is_staff = bool(unix_groups(name) & set(settings.PAM_STAFF_GROUPS))
            if user.is_staff != is_staff:
                user.is_staff = is_staff
                user.save(update_fields=["is_staff"])
        return user

    def _create(self, name: str) -> Any:
        users = get_user_model()._default_manager
        try:
            with transaction.atomic():
                return get_user_model().objects.create_user(name)  # no usable password: not a local account
        except IntegrityError:  # a concurrent first sign-in created it
            return users.filter(username__iexact=name).first()

    def get_user(self, user_id: Any) -> Any:
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None
