"""Which Slurm cluster a request is about.

A site with one cluster never sees a chooser; with several (SLURM_CLUSTERS), the choice is kept
in the session and can be given per request with ?cluster=<name>.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

SESSION_KEY = "portal_cluster"


def clusters() -> list[str]:
    return list(settings.SLURM_CLUSTERS)


def current_cluster(request: Any) -> str:
    names = clusters()
    wanted = request.GET.get("cluster") if hasattr(request, "GET") else None
    if wanted in names:
        return str(wanted)
    session = getattr(request, "session", None)
    chosen = session.get(SESSION_KEY) if session is not None else None
    return str(chosen) if chosen in names else names[0]
