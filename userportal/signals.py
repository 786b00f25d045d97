"""Sign-in events go to the audit log: success, failure, lockout and sign-out."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from userportal.audit import audit


def _backend(request: Any) -> str:
    session = getattr(request, "session", None)
    return str(session.get("_auth_user_backend", "")) if session is not None else ""


@receiver(user_logged_in, dispatch_uid="audit-login")
def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit("auth.login", request=request, actor=user.get_username(), extra={"backend": _backend(request)})


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    audit("auth.login_failed", request=request, actor=str(credentials.get("username", ""))[:150], status="failed")


@receiver(user_locked_out, dispatch_uid="audit-lockout")
def on_lockout(
    sender: Any, request: Any, username: str | None = None, ip_address: str | None = None, **kwargs: Any
) -> None:
    audit("auth.lockout", request=request, actor=username or "", status="locked")


@receiver(user_logged_out, dispatch_uid="audit-logout")
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit("auth.logout", request=request, actor=user.get_username() if user is not None else "")
