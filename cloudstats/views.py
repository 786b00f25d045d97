"""cloudstats pages and graph JSON. Thin: parse, call a service, render.

Pages render with a notice when Prometheus or the exporter is down (or the source of project
members); graph JSON answers a JSON 503 then (DataSourceError through the middleware), and a 404
for an instance that is not in the project of the URL.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from cloudstats import graphs, services, usage
from cloudstats.membership import projects_of
from cloudstats.presets import current
from userportal.errors import DataSourceError
from userportal.prometheus import MetricsSession
from userportal.windows import Window, WindowError


def bad_period_is_400(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page whose ?delta= or ?start=&end= is not a period (userportal.windows) answers 400."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except WindowError as exc:
            return render(request, "400.html", {"message": str(exc)}, status=400)

    return wrapper


def _base(request: HttpRequest) -> tuple[dict[str, Any], Window]:
    period = services.requested_period(request.GET)  # WindowError: a 400
    preset = current()
    return {
        "unavailable": None,
        "partial": None,
        "windows": services.WINDOWS,
        "delta": period.seconds,
        "exporter": preset.title,
        "lacks": preset.lacks(),
        "has_user": preset.user_label is not None,
    }, period


def _note(context: dict[str, Any], state: services.Health) -> None:
    if state.partial:
        context["partial"] = _(
            "%(up)d of %(targets)d exporters answered at their last scrape: some instances may be missing."
        ) % {"up": state.up - state.libvirt_down, "targets": state.targets}


def _graph_list(level: str, url_name: str, **kwargs: str) -> list[dict[str, Any]]:
    preset = current()
    return [
        {"spec": spec, "url": reverse(url_name, kwargs={**kwargs, "metric": spec.name})}
        for spec in graphs.graphs_for(level)
        if spec.available(preset)
    ]


@bad_period_is_400
def index(request: HttpRequest) -> HttpResponse:
    context, period = _base(request)
    context.update(projects=[], all_projects=[], membership=settings.CLOUDSTATS_MEMBERSHIP)
    session = MetricsSession()
    try:
        names = projects_of(request.user.get_username())
        state, context["projects"] = services.project_totals(session, period, names)
        if request.user.is_staff:
            state, context["all_projects"] = services.project_totals(session, period)
            context["graphs"] = _graph_list(graphs.STAFF, "cloudstats:staff_graph")
        _note(context, state)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "cloudstats/index.html", context)


@bad_period_is_400
def project(request: HttpRequest, project: str) -> HttpResponse:
    context, period = _base(request)
    context.update(project=project, instances=[])
    try:
        state, context["instances"] = services.instances(MetricsSession(), project, period)
        _note(context, state)
        context["graphs"] = _graph_list(graphs.PROJECT, "cloudstats:project_graph", project=project)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "cloudstats/project.html", context)


@bad_period_is_400
def instance(request: HttpRequest, project: str, uuid: Any) -> HttpResponse:
    context, period = _base(request)
    context.update(project=project, uuid=str(uuid), instance=None)
    try:
        state, context["instance"] = services.instance(MetricsSession(), project, str(uuid), period)
        _note(context, state)
        context["graphs"] = _graph_list(graphs.INSTANCE, "cloudstats:instance_graph", project=project, uuid=str(uuid))
    except services.NoSuchInstance:
        raise Http404(_("No instance %(uuid)s in project %(project)s.") % {"uuid": uuid, "project": project}) from None
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "cloudstats/instance.html", context)


def _graph(request: HttpRequest, metric: str, scope: graphs.Scope) -> JsonResponse:
    spec = graphs.GRAPHS.get(metric)
    if spec is None or scope.level not in spec.levels:
        return JsonResponse({"detail": _("No graph of that name."), "graphs": sorted(graphs.GRAPHS)}, status=404)
    try:
        period = services.requested_period(request.GET)
    except WindowError as exc:
        return JsonResponse({"detail": str(exc), "status": 400}, status=400)
    if not spec.available(current()):  # nothing to ask: say so (no data leaves, whatever the instance)
        return JsonResponse(graphs.build(MetricsSession(), metric, scope, period))
    session = MetricsSession()
    try:
        services.check_graph(session, scope.project, scope.uuid, period)  # ExporterDown: a JSON 503 (middleware)
    except services.NoSuchInstance:
        return JsonResponse({"detail": _("No such instance in this project."), "status": 404}, status=404)
    return JsonResponse(graphs.build(session, metric, scope, period))


def staff_graph(request: HttpRequest, metric: str) -> JsonResponse:
    return _graph(request, metric, graphs.Scope())


def project_graph(request: HttpRequest, project: str, metric: str) -> JsonResponse:
    return _graph(request, metric, graphs.Scope(project=project))


def instance_graph(request: HttpRequest, project: str, uuid: Any, metric: str) -> JsonResponse:
    return _graph(request, metric, graphs.Scope(project=project, uuid=str(uuid)))


def _usage(request: HttpRequest, project: str | None) -> HttpResponse:
    context, period = _base(request)
    per_instance = project is not None
    context.update(project=project, rows=[], per_instance=per_instance)
    try:
        state, context["rows"] = usage.usage(
            MetricsSession(), period, projects=[project] if project else None, per_instance=per_instance
        )
        _note(context, state)
    except DataSourceError as exc:
        if request.GET.get("format") == "csv":
            raise
        context["unavailable"] = exc.user_message
    if request.GET.get("format") == "csv":
        buffer = io.StringIO()
        usage.write_csv(buffer, context["rows"], per_instance=per_instance)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", project or "all")
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="cloud-usage-{name}-{period.seconds // 3600}h.csv"'
        return response
    return render(request, "cloudstats/usage.html", context)


@bad_period_is_400
def project_usage(request: HttpRequest, project: str) -> HttpResponse:
    return _usage(request, project)


@bad_period_is_400
def staff_usage(request: HttpRequest) -> HttpResponse:
    return _usage(request, None)


@bad_period_is_400
def idle(request: HttpRequest) -> HttpResponse:
    context, period = _base(request)
    context.update(rows=[], threshold=settings.CLOUDSTATS_IDLE_CPU_PERCENT)
    try:
        state, context["rows"] = usage.idle(MetricsSession(), period)
        _note(context, state)
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "cloudstats/idle.html", context)
