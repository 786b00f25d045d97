"""nodes pages (staff only). Each data source (scontrol, the accounting database, Prometheus) fails on
its own: the page still renders and says which one is down."""

from __future__ import annotations

import re
import time
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from nodes import accounting, graphs
from nodes.state import NodeState, slurm_nodes
from slurm.commands import SlurmCommandError
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError, as_data_source_error
from userportal.figures import no_data
from userportal.prometheus import MetricsSession
from userportal.windows import HOUR, Window, WindowError, back_from, requested

NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SORTS = {
    "name": lambda n: n.name,
    "state": lambda n: (n.state, n.name),
    "cpu": lambda n: (n.cpu_ratio, n.name),
    "memory": lambda n: (n.mem_ratio, n.name),
    "gpu": lambda n: (n.gpus_alloc, n.name),
}


def scontrol_message() -> str:
    return _("Slurm (scontrol) is not answering: node states cannot be shown right now.")


def index(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"problems": []}
    try:
        nodes = slurm_nodes()
    except SlurmCommandError:
        context["problems"].append(scontrol_message())
        nodes = []
    sort = request.GET.get("sort", "name")
    key = SORTS.get(sort.lstrip("-"), SORTS["name"])
    nodes.sort(key=key, reverse=sort.startswith("-"))
    page = Paginator(nodes, settings.NODES_PAGE_SIZE).get_page(request.GET.get("page"))
    names = [node.name for node in page.object_list]
    session = MetricsSession()
    lines: dict[str, str] = {}
    scratch: dict[str, tuple[float, float]] = {}
    try:
        lines = graphs.sparklines(session, names, back_from(time.time(), HOUR))
        scratch = graphs.scratch(session, names)
    except DataSourceError as exc:
        context["problems"].append(exc.user_message)
    context.update(
        page=page,
        rows=[(node, lines.get(node.name, ""), scratch.get(node.name)) for node in page.object_list],
        sort=sort,
        sorts=list(SORTS),
    )
    return render(request, "nodes/index.html", context)


def _node_name(node: str) -> str:
    if not NODE_NAME.match(node):
        raise Http404(_("No such node."))
    return node


def _window(request: HttpRequest) -> Window:
    return requested(
        delta=request.GET.get("delta"),
        start=request.GET.get("start"),
        end=request.GET.get("end"),
        default=settings.NODES_DEFAULT_WINDOW,
    )


def node(request: HttpRequest, node: str) -> HttpResponse:
    name = _node_name(node)
    try:
        window = _window(request)
    except WindowError as exc:
        return render(request, "400.html", {"message": str(exc)}, status=400)
    context: dict[str, Any] = {"node": name, "window": window, "problems": [], "state": None, "events": []}
    try:
        found: list[NodeState] = slurm_nodes(name)
        context["state"] = found[0] if found else None
    except SlurmCommandError:
        context["problems"].append(scontrol_message())
    try:
        context["events"] = [
            (event, accounting.node_state_name(event.state))
            for event in accounting.events(current_cluster(request), name, window)
        ]
    except DatabaseError as exc:
        problem = as_data_source_error(exc)
        if problem is None:
            raise
        context["problems"].append(problem.user_message)
    query = request.GET.urlencode()
    context["graphs"] = [
        {"name": key, "title": title, "url": f"{request.path}graph/{key}/" + (f"?{query}" if query else "")}
        for key, (_resource, title) in graphs.TIMELINES.items()
    ] + [
        {
            "name": graph.name,
            "title": graph.title,
            "url": f"{request.path}graph/{graph.name}/" + (f"?{query}" if query else ""),
        }
        for graph in graphs.METRIC_GRAPHS
    ]
    context["deltas"] = [
        (HOUR, _("1 hour")),
        (6 * HOUR, _("6 hours")),
        (86400, _("1 day")),
        (2 * 86400, _("2 days")),
        (7 * 86400, _("7 days")),
    ]
    return render(request, "nodes/node.html", context)


def graph(request: HttpRequest, node: str, graph: str) -> JsonResponse:
    name = _node_name(node)
    if graph not in graphs.GRAPH_NAMES:
        raise Http404(_("No such graph."))
    try:
        window = _window(request)
    except WindowError as exc:
        return JsonResponse({"detail": str(exc), "status": 400}, status=400)
    if graph in graphs.TIMELINES:
        resource, title = graphs.TIMELINES[graph]
        try:
            jobs = accounting.jobs_on(current_cluster(request), name, window)
        except DatabaseError as exc:
            problem = as_data_source_error(exc)
            if problem is None:
                raise
            return JsonResponse(no_data(str(title), str(problem.user_message)))
        return JsonResponse(graphs.timeline(jobs, window, resource))
    spec = next(item for item in graphs.METRIC_GRAPHS if item.name == graph)
    try:
        return JsonResponse(spec.draw(MetricsSession(), name, window))
    except DataSourceError as exc:
        return JsonResponse(no_data(str(spec.title), str(exc.user_message)))
