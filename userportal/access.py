"""Who may see which URL: one rule per URL pattern, enforced in one place.

Every pattern in the URL conf is wrapped with `guard(rule, path(...))` (or a whole include with
`guard_include`). AccessRuleMiddleware enforces the rule of the matched pattern for pages;
TableAccessPermission enforces the same rule for DRF views (userportal.permissions) (after token authentication).
A pattern without a rule is refused (fail closed) and fails tests/test_access.py, which walks
every route as anonymous, owner, another user, a member of the owner's account and staff.

Slurm account membership (Rule.ACCOUNT_MEMBER) is Slurm's business, and userportal imports
nothing of slurm/: the slurm app registers its check at start-up (SlurmConfig.ready() calls
register_membership()). Cloud project membership (Rule.PROJECT_MEMBER) is cloudstats': its app
registers it the same way (register_member_check()).
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver

from userportal.clusters import current_cluster
from userportal.errors import as_data_source_error
from userportal.middleware import unavailable_response

logger = logging.getLogger(__name__)

SERVICE_GROUP = "service-accounts"

# (username, account, cluster) -> whether the user has a live association with the account.
MembershipCheck = Callable[[str, str, str], bool]
_membership: list[MembershipCheck] = []  # the registered check, at most one


def register_membership(check: MembershipCheck) -> None:
    """Install the account membership check that Rule.ACCOUNT_MEMBER asks (the slurm app's, at start-up)."""
    _membership[:] = [check]


def is_account_member(username: str, account: str, cluster: str) -> bool:
    """Whether ``username`` is a member of the Slurm ``account`` on ``cluster``, by the registered check."""
    if not _membership:
        raise ImproperlyConfigured(
            "No account membership check is registered: the slurm app must be in INSTALLED_APPS "
            "(SlurmConfig.ready() calls userportal.access.register_membership())."
        )
    return _membership[0](username, account, cluster)


class Rule(enum.Enum):
    """Access rules. The value is the documentation shown in the route table."""

    PUBLIC = "anyone, signed in or not"
    LOGIN = "any signed-in user"
    OWNER = "the user named in the URL, or staff"
    ACCOUNT_MEMBER = "members of the Slurm account named in the URL, or staff"
    PROJECT_MEMBER = "members of the cloud project named in the URL, or staff"
    STAFF = "staff only"
    STAFF_OR_PERMISSION = "staff, or users holding the permission the pattern names (read-only staff pages)"
    SERVICE = "service accounts (uploader tokens) and staff"
    ADMIN = "Django admin's own checks (staff with model permissions)"
    METRICS = "Prometheus: the bearer PORTAL_METRICS_TOKEN or an address in PORTAL_METRICS_ALLOW, and staff"


# Membership rules whose source belongs to a feature app (which registers it when it loads):
# rule -> (the URL parameter naming the group, check(username, value)). Unregistered: refused.
MemberCheck = Callable[[str, str], bool]
_member_checks: dict[Rule, tuple[str, MemberCheck]] = {}


def register_member_check(rule: Rule, parameter: str, check: MemberCheck) -> None:
    """Let ``rule`` through when ``check(username, <the URL's parameter>)`` is true (and staff)."""
    _member_checks[rule] = (parameter, check)


def guard(rule: Rule, pattern: URLPattern, *, permission: str = "") -> URLPattern:
    """Declare the access rule of one URL pattern (Rule.STAFF_OR_PERMISSION names its permission)."""
    if not isinstance(rule, Rule):
        raise TypeError(f"guard() needs a Rule, got {rule!r}")
    if (rule is Rule.STAFF_OR_PERMISSION) != bool(permission):
        raise TypeError("guard(): Rule.STAFF_OR_PERMISSION needs permission='app_label.codename', other rules none")
    pattern.access_rule = rule  # type: ignore[attr-defined]
    pattern.access_permission = permission  # type: ignore[attr-defined]
    return pattern


def guard_include(rule: Rule, resolver: URLResolver) -> URLResolver:
    """Declare one rule for every pattern of an included URL conf that has none of its own."""
    resolver.access_rule = rule  # type: ignore[attr-defined]
    return resolver


def iter_routes(
    patterns: list[Any] | None = None, prefix: str = "", inherited: Rule | None = None
) -> Iterator[tuple[str, URLPattern, Rule | None]]:
    """Every (route string, pattern, rule) of the URL conf, depth first."""
    if patterns is None:
        patterns = list(get_resolver().url_patterns)
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from iter_routes(list(entry.url_patterns), route, getattr(entry, "access_rule", inherited))
        else:
            yield route, entry, getattr(entry, "access_rule", inherited)


@functools.cache
def route_table() -> dict[str, Rule | None]:
    table: dict[str, Rule | None] = {}
    for route, _pattern, rule in iter_routes():
        # The first pattern wins when two share a route string, as in Django's resolver.
        table.setdefault(_normalise(route), rule)
    return table


@functools.cache
def permission_table() -> dict[str, str]:
    """The permission each Rule.STAFF_OR_PERMISSION route names, by route string."""
    table: dict[str, str] = {}
    for route, pattern, _rule in iter_routes():
        table.setdefault(_normalise(route), getattr(pattern, "access_permission", ""))
    return table


def permission_for(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return permission_table().get(_normalise(match.route), "") if match is not None else ""


def rule_for(request: HttpRequest) -> Rule | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    return route_table().get(_normalise(match.route))


def _normalise(route: str) -> str:
    # ResolverMatch.route drops the "^" anchors of regex patterns when it joins them.
    return route.replace("^", "")


def is_service_account(user: Any) -> bool:
    """In the service-accounts group: read from the groups prefetched with an API token (no query), else one query."""
    if not user.is_authenticated:
        return False
    groups = getattr(user, "_prefetched_objects_cache", {}).get("groups")
    if groups is not None:  # what user.groups.all() returns, without building the related manager
        return any(group.name == SERVICE_GROUP for group in groups)
    return bool(user.groups.filter(name=SERVICE_GROUP).exists())


def allowed(rule: Rule, request: HttpRequest, kwargs: dict[str, Any]) -> bool:
    """Whether `request.user` passes `rule` for a URL with these captured `kwargs`."""
    user = request.user
    if rule is Rule.PUBLIC:
        return True
    if rule is Rule.METRICS:
        from userportal.metrics import scraper_allowed

        return scraper_allowed(request) or bool(user.is_authenticated and user.is_staff)
    if not user.is_authenticated:
        return False
    if rule is Rule.ADMIN:
        return bool(user.is_staff)  # and then Django admin's own model permissions
    if rule is Rule.LOGIN:
        return True
    if user.is_staff:
        return True
    if rule is Rule.STAFF_OR_PERMISSION:
        permission = permission_for(request)
        return bool(permission) and bool(user.has_perm(permission))
    if rule is Rule.OWNER:
        return kwargs.get("username") == user.get_username()
    if rule is Rule.ACCOUNT_MEMBER:
        account = kwargs.get("account")
        if not account:
            return False
        return is_account_member(user.get_username(), str(account), current_cluster(request))
    if rule is Rule.SERVICE:
        return is_service_account(user)
    if rule in _member_checks:
        parameter, check = _member_checks[rule]
        value = kwargs.get(parameter)
        return bool(value) and check(user.get_username(), str(value))
    return False  # STAFF, and any rule added later without a branch here


def is_api_view(view_func: Any) -> bool:
    from rest_framework.views import APIView  # lazily: DRF's settings import our permission class

    cls = getattr(view_func, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


class AccessRuleMiddleware:
    """Enforces the matched pattern's rule before any page view runs."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: tuple[Any, ...], view_kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        rule = rule_for(request)
        if rule is None:
            logger.error("no access rule for route %r: refused", getattr(request.resolver_match, "route", None))
            raise PermissionDenied("This address has no access rule.")
        if is_api_view(view_func):
            return None  # DRF authenticates tokens first; TableAccessPermission applies the rule
        try:
            if allowed(rule, request, view_kwargs):
                return None
        except Exception as exc:  # a membership source that is down: its notice, not a 500
            error = as_data_source_error(exc)
            if error is None:
                raise
            return unavailable_response(request, error, exc)
        if rule is Rule.METRICS:
            raise PermissionDenied  # a scraper follows no sign-in page
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        raise PermissionDenied
