"""scheduler pages (staff only): one page of tables and graphs, the graphs' JSON and a CSV.

The accounting database and Prometheus (LevelFS) fail on their own: the page says which is down.
"""

from __future__ import annotations

import io
import re
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from scheduler import analytics, figures
from userportal import csvsafe
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError, as_data_source_error
from userportal.figures import no_data
from userportal.prometheus import MetricsSession
from userportal.windows import DAY, Window, WindowError, requested

ACCOUNT = re.compile(r"^[A-Za-z0-9._@-]{0,64}$")


class BadRequest(ValueError):
    pass


def _params(request: HttpRequest) -> tuple[Window, str]:
    account = request.GET.get("account", "").strip()
    if not ACCOUNT.match(account):
        raise BadRequest(_("account is not a Slurm account name."))
    try:
        window = requested(
            delta=request.GET.get("delta"),
            start=request.GET.get("start"),
            end=request.GET.get("end"),
            default=settings.SCHEDULER_DEFAULT_DAYS * DAY,
        )
    except WindowError as exc:
        raise BadRequest(str(exc)) from exc
    return window, account


def _stats(request: HttpRequest, window: Window, account: str) -> tuple[list[analytics.PartitionStats], list[str]]:
    """The per-partition statistics and the problems met (each naming its source)."""
    problems: list[str] = []
    try:
        jobs = analytics.jobs_started(current_cluster(request), window, account)
    except DatabaseError as exc:
        problem = as_data_source_error(exc)
        if problem is None:
            raise
        return [], [str(problem.user_message)]
    levelfs = None
    try:
        levelfs = analytics.levelfs_at_start(MetricsSession(), jobs, window)
    except DataSourceError as exc:
        problems.append(str(exc.user_message))
    return analytics.by_partition(jobs, levelfs), problems


def _bad_request(request: HttpRequest, exc: BadRequest) -> HttpResponse:
    return render(request, "400.html", {"message": str(exc)}, status=400)


def index(request: HttpRequest) -> HttpResponse:
    try:
        window, account = _params(request)
    except BadRequest as exc:
        return _bad_request(request, exc)
    stats, problems = _stats(request, window, account)
    query = request.GET.urlencode()
    context: dict[str, Any] = {
        "stats": stats,
        "problems": problems,
        "window": window,
        "account": account,
        "days": window.seconds // DAY,
        "sizes": [label for _limit, label in analytics.SIZES],
        "levelfs_missing": not problems and stats and all(entry.levelfs_mean is None for entry in stats),
        "query": query,
        "periods": [(days * DAY, _("%(days)d days") % {"days": days}) for days in (1, 7, 30, 90, 365)],
        "graphs": [
            {"name": name, "url": f"{request.path}graph/{name}/" + (f"?{query}" if query else "")}
            for name in figures.GRAPHS
        ],
    }
    return render(request, "scheduler/index.html", context)


def graph(request: HttpRequest, chart: str) -> JsonResponse:
    if chart not in figures.GRAPHS:
        raise Http404(_("No such graph."))
    try:
        stats, problems = _stats(request, *_params(request))
    except BadRequest as exc:
        return JsonResponse({"detail": str(exc), "status": 400}, status=400)
    if problems and not stats:
        return JsonResponse(no_data("", problems[0]))
    return JsonResponse(figures.GRAPHS[chart](stats))


def csv_export(request: HttpRequest) -> HttpResponse:
    try:
        stats, problems = _stats(request, *_params(request))
    except BadRequest as exc:
        return _bad_request(request, exc)
    if problems and not stats:
        return render(request, "unavailable.html", {"error": {"user_message": problems[0]}}, status=503)
    stream = io.StringIO()
    csvsafe.writer(stream).writerows(analytics.csv_rows(stats))
    response = HttpResponse(stream.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="scheduler.csv"'
    return response
