"""System checks: every route has an access rule, every API view applies it; in production
(check --deploy) the audit log has a key of its own and rate limits count in a shared cache."""

from __future__ import annotations

from typing import Any

from django.conf import settings
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


@checks.register(checks.Tags.security, deploy=True)
def check_audit_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    # A key derived from SECRET_KEY falls with it: whoever reads the settings or a leaked secret
    # could rebuild the audit chain. A key of its own can live where the web processes cannot write.
    key = str(settings.AUDIT_HMAC_KEY)
    secret = str(settings.SECRET_KEY)
    if getattr(settings, "AUDIT_HMAC_KEY_DERIVED", False) or secret in key or len(key) < 32:
        return [
            checks.Error(
                "AUDIT_HMAC_KEY is derived from SECRET_KEY, contains it, or is shorter than 32 characters.",
                hint="Set AUDIT_HMAC_KEY (or AUDIT_HMAC_KEY_FILE) to a separate random value, "
                "e.g. `head -c 48 /dev/urandom | base64`.",
                id="portal.E010",
            )
        ]
    return []


@checks.register(checks.Tags.security, checks.Tags.caches, deploy=True)
def check_throttle_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    backend = str(settings.CACHES.get("throttle", {}).get("BACKEND", ""))
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [
            checks.Warning(
                "Rate-limit counters are kept in each process's memory: every limit is multiplied by the "
                "number of portal processes.",
                hint="Set REDIS_URL (or PORTAL_THROTTLE_CACHE_URL to a Redis cache, e.g. rediscache://127.0.0.1:6379/3).",
                id="portal.W011",
            )
        ]
    return []
