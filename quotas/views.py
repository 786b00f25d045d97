"""quotas pages. Thin: parse, call a service, render; Robinhood or LDAP down gives a notice, not a 500."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from quotas import services
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError


def index(request: HttpRequest) -> HttpResponse:
    return redirect("quotas:user", username=request.user.get_username())


def user(request: HttpRequest, username: str) -> HttpResponse:
    cluster = current_cluster(request)
    context: dict[str, Any] = {"owner": username, "unavailable": None, "reports": []}
    try:
        context["reports"] = services.reports_for(username, cluster)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    context["alerts"] = [report.alert for report in context["reports"] if report.alert]
    return render(request, "quotas/user.html", context)
