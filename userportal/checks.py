"""System checks: every route has an access rule, every API view applies it; in production
(check --deploy) the audit log has a key of its own, and rate limits, caches, sessions and metrics are
shared by every process (not kept in one process's memory)."""

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


@checks.register(checks.Tags.caches, deploy=True)
def check_shared_state(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Two portal processes (or instances) must share what the pages rely on: caches, sessions, metrics."""
    found: list[checks.CheckMessage] = []
    default = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    if default.endswith(("LocMemCache", "DummyCache")):
        found.append(
            checks.Warning(
                "The default cache (the jobs lists' counts, uids, API tokens, pages' figures) is kept in each "
                "process's memory: every process and instance counts and caches on its own.",
                hint="Set REDIS_URL (the cache then uses it) or PORTAL_CACHE_URL to a Redis cache.",
                id="portal.W012",
            )
        )
    engine = str(getattr(settings, "SESSION_ENGINE", ""))
    if engine.endswith((".cache", ".cached_db")) and default.endswith(("LocMemCache", "DummyCache")):
        found.append(
            checks.Warning(
                "Sessions live in a per-process cache: a user signed in on one process is unknown to the others.",
                hint="Keep the database sessions (the default) or put the default cache on Redis.",
                id="portal.W013",
            )
        )
    if not getattr(settings, "PORTAL_METRICS_REDIS_URL", ""):
        found.append(
            checks.Warning(
                "The portal's metrics (/metrics) are counted in each process's memory: a scrape sees only the "
                "process that answers it.",
                hint="Set REDIS_URL or PORTAL_METRICS_REDIS_URL.",
                id="portal.W014",
            )
        )
    return found
