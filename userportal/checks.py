"""System checks: every route has an access rule, every API view applies it."""

from __future__ import annotations

from typing import Any

from django.core import checks

from userportal.access import is_api_view, iter_routes
from userportal.permissions import TableAccessPermission


@checks.register(checks.Tags.security, checks.Tags.urls)
def check_access_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for route, pattern, rule in iter_routes():
        if rule is None:
            errors.append(
                checks.Error(
                    f"URL pattern {route!r} has no access rule.",
                    hint="Wrap it with userportal.access.guard().",
                    id="portal.E001",
                )
            )
        callback: Any = pattern.callback
        if is_api_view(callback):
            classes = getattr(callback.cls, "permission_classes", ())
            if not any(isinstance(c, type) and issubclass(c, TableAccessPermission) for c in classes):
                errors.append(
                    checks.Error(
                        f"API view {callback.cls.__name__} at {route!r} does not apply TableAccessPermission.",
                        hint="Keep the default permission classes or add TableAccessPermission.",
                        id="portal.E002",
                    )
                )
    return errors
