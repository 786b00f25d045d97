from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.functional import Promise

from userportal.clusters import clusters, current_cluster
from userportal.modules import Module, enabled_modules


@dataclass(frozen=True)
class NavLink:
    """A module's link in the navigation bar: ``active`` when the request's path holds its URL."""

    title: str | Promise
    icon: str
    url: str
    active: bool


def portal(request: HttpRequest) -> dict[str, Any]:
    names = clusters()
    links = [
        (module, NavLink(module.title, module.icon, url, bool(url) and url in request.path))
        for module, url in _module_urls(
            tuple(settings.PORTAL_MODULES), get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF
        )
    ]
    return {
        "portal_site_name": settings.PORTAL_SITE_NAME,
        "portal_nav": [link for module, link in links if not module.staff_only],
        "portal_staff_nav": [link for module, link in links if module.staff_only],
        "portal_module_names": set(settings.PORTAL_MODULES),  # for links into other modules
        "portal_clusters": names if len(names) > 1 else [],
        "portal_cluster": current_cluster(request),
        "portal_docs_url": settings.PORTAL_DOCS_URL,
        "portal_oidc_enabled": settings.OIDC_ENABLED,
    }


@functools.lru_cache(maxsize=16)
def _module_urls(_modules: tuple[str, ...], _prefix: str, urlconf: str) -> tuple[tuple[Module, str], ...]:
    """The enabled modules and their URLs ("" for none), reversed once per set of modules, script
    prefix and URL configuration (the arguments are the cache's key) instead of a {% url %} per
    module on every page."""
    found = []
    for module in enabled_modules():
        try:
            found.append((module, reverse(module.url_name, urlconf=urlconf)))
        except NoReverseMatch:
            found.append((module, ""))
    return tuple(found)
