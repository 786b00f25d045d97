from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from userportal.clusters import clusters, current_cluster
from userportal.modules import enabled_modules


def portal(request: HttpRequest) -> dict[str, Any]:
    names = clusters()
    return {
        "portal_site_name": settings.PORTAL_SITE_NAME,
        "portal_modules": enabled_modules(),
        "portal_module_names": set(settings.PORTAL_MODULES),  # for links into other modules
        "portal_clusters": names if len(names) > 1 else [],
        "portal_cluster": current_cluster(request),
        "portal_docs_url": settings.PORTAL_DOCS_URL,
        "portal_oidc_enabled": settings.OIDC_ENABLED,
    }
