"""The public cluster status page and its graphs. Thin: parse the period, ask the services, render.

The page renders when Prometheus is down (a notice where the figures would be); a graph answers
the "no data" figure or a JSON error (503 through the middleware).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from pages import services
from userportal.errors import PrometheusUnavailable
from userportal.prometheus import MetricsSession
from userportal.windows import DAY, WindowError, requested


def index(request: HttpRequest) -> HttpResponse:
    names = [name for name in services.SECTIONS if name in settings.PAGES_SECTIONS]
    context: dict[str, Any] = {
        "intro": services.intro_html(settings.PAGES_INTRO) if settings.PAGES_INTRO.strip() else "",
        "sections": [
            {
                "name": name,
                "title": services.SECTION_TITLES[name],
                "graphs": [
                    {"spec": spec, "url": reverse("pages:graph", kwargs={"figure": spec.name})}
                    for spec in services.graphs_of(name)
                ],
            }
            for name in names
        ],
        "days": services.DEFAULT_DAYS,
        "metrics_notice": None,
        "shares": [],
    }
    session = MetricsSession()
    try:
        session.query("vector(1)")  # one cheap question: are there figures to draw at all?
        if "software" in names:
            window = requested(delta=None, start=None, end=None, default=services.DEFAULT_DAYS * DAY)
            context["shares"] = services.software_shares(session, window)
    except PrometheusUnavailable as exc:
        context["metrics_notice"] = exc.user_message
    return render(request, "pages/index.html", context)


def graph(request: HttpRequest, figure: str) -> JsonResponse:
    spec = services.GRAPHS.get(figure)
    if spec is None or spec.section not in settings.PAGES_SECTIONS:
        return JsonResponse({"detail": _("No graph of that name."), "status": 404}, status=404)
    try:
        window = requested(
            delta=request.GET.get("delta"),
            start=request.GET.get("start"),
            end=request.GET.get("end"),
            default=services.DEFAULT_DAYS * DAY,
        )
    except WindowError as exc:
        return JsonResponse({"detail": str(exc), "status": 400}, status=400)
    return JsonResponse(services.build_graph(MetricsSession(), figure, window))
