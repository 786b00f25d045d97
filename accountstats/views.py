"""accountstats pages and graph JSON. Thin: parse, call a service, render.

Pages render when Prometheus or the Slurm database is down, with a notice where their data would
be; graph JSON answers the "no data" figure or a JSON error (503 through the middleware).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from accountstats import services
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError, PrometheusUnavailable
from userportal.prometheus import MetricsSession
from userportal.windows import DAY, WindowError, requested


def index(request: HttpRequest) -> HttpResponse:
    cluster = current_cluster(request)
    days = settings.ACCOUNTSTATS_DEFAULT_DAYS
    context: dict[str, Any] = {"unavailable": None, "accounts": [], "days": days}
    try:
        names = services.accounts_for(request.user, cluster)
        context["accounts"] = services.use_by_account(names, cluster, days=days)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "accountstats/index.html", context)


def account(request: HttpRequest, account: str) -> HttpResponse:
    cluster = current_cluster(request)
    try:
        window = requested(
            delta=request.GET.get("delta"), start=None, end=None, default=settings.ACCOUNTSTATS_DEFAULT_DAYS * DAY
        )
    except WindowError as exc:
        return render(request, "400.html", {"message": str(exc)}, status=400)
    context: dict[str, Any] = {
        "account": account,
        "unavailable": None,
        "metrics_notice": None,
        "rows": [],
        "windows": services.WINDOWS,
        "delta": window.seconds,
        "graphs": [
            {"spec": spec, "url": reverse("accountstats:graph", kwargs={"account": account, "name": spec.name})}
            for spec in services.GRAPHS.values()
            if spec.available()
        ],
    }
    try:
        context["rows"] = services.user_table(MetricsSession(), account, window, cluster)
    except PrometheusUnavailable as exc:
        context["metrics_notice"] = exc.user_message
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    try:
        context["page"] = services.jobs_page(account, cluster, page=request.GET.get("page", 1))
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "accountstats/account.html", context)


def graph(request: HttpRequest, account: str, name: str) -> JsonResponse:
    spec = services.GRAPHS.get(name)
    if spec is None:
        return JsonResponse({"detail": _("No graph of that name."), "graphs": sorted(services.GRAPHS)}, status=404)
    try:
        window = requested(
            delta=request.GET.get("delta"),
            start=request.GET.get("start"),
            end=request.GET.get("end"),
            default=(spec.default_days or settings.ACCOUNTSTATS_DEFAULT_DAYS) * DAY,
        )
    except WindowError as exc:
        return JsonResponse({"detail": str(exc), "status": 400}, status=400)
    return JsonResponse(services.build_graph(MetricsSession(), name, account, window))
