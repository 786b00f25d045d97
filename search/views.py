"""The staff search page and its JSON twin. Thin: clean the query, search, render (escaped) or answer data."""

from __future__ import annotations

from dataclasses import asdict

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from search import services
from userportal.clusters import current_cluster


def index(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("q", "")
    context: dict[str, object] = {"query": raw, "outcome": None, "error": None}
    if raw.strip():
        try:
            context["outcome"] = services.search(raw, cluster=current_cluster(request))
        except services.QueryError as exc:
            context["error"] = str(exc)
    return render(request, "search/index.html", context, status=400 if context["error"] else 200)


def results(request: HttpRequest) -> JsonResponse:
    try:
        outcome = services.search(request.GET.get("q", ""), cluster=current_cluster(request))
    except services.QueryError as exc:
        return JsonResponse({"detail": str(exc), "status": 400}, status=400)
    return JsonResponse(
        {
            "query": outcome.query,
            "results": [asdict(hit) for hit in outcome.hits],
            "unavailable": outcome.unavailable,
            "truncated": outcome.truncated,
        }
    )
