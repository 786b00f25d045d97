"""jobstats pages and their JSON (graphs, cost). Thin: parse, call a service, render.

Pages render when a data source is down, with a notice where its data would be; the JSON
endpoints answer a JSON error instead (PrometheusUnavailable becomes a 503 in the middleware).
"""

from __future__ import annotations

import functools
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from jobstats import energy, jobpage, jobusage, listing, services
from jobstats.domain.jobids import JobIdError, format_job_ids, parse_array_task, parse_job_ids
from jobstats.graphs.job import JOB_GRAPHS, job_graphs_for
from jobstats.graphs.user import USER_GRAPHS
from jobstats.windows import job_window
from slurm.decoders import STATE_FILTER_CHOICES
from slurm.models import Tres
from slurm.visibility import accounts_of
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError, SlurmDatabaseUnavailable
from userportal.figures import no_data
from userportal.prometheus import MetricsSession
from userportal.windows import WindowError, requested

WINDOWS = (
    (3600, "1 h"),
    (6 * 3600, "6 h"),
    (86400, "1 d"),
    (2 * 86400, "2 d"),
    (7 * 86400, "7 d"),
    (30 * 86400, "30 d"),
    (90 * 86400, "90 d"),
)
# The user page's constant <option>s, made once instead of by a template loop on every view.
WINDOW_OPTIONS = format_html_join("", '<option value="{}">{}</option>', WINDOWS)


@functools.cache
def _state_options(language: str) -> SafeString:
    """The state filter's <option>s in ``language``, the active one (the labels are translated)."""
    return format_html_join("", '<option value="{}">{}</option>', STATE_FILTER_CHOICES)


def json_error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": message, "status": status, **extra}, status=status)


def index(request: HttpRequest) -> HttpResponse:
    return redirect("jobstats:user", username=request.user.get_username())


def user(request: HttpRequest, username: str) -> HttpResponse:
    cluster = current_cluster(request)
    session = MetricsSession()
    context: dict[str, Any] = {
        "owner": username,
        "unavailable": None,
        "use": None,
        "window_options": WINDOW_OPTIONS,
        "state_options": _state_options(get_language()),
        "api_url": reverse("jobstats:api-jobs"),
        "graphs": [
            {"spec": spec, "url": reverse("jobstats:user_graph", kwargs={"username": username, "name": spec.name})}
            for spec in USER_GRAPHS.values()
            if spec.available()
        ],
    }
    with listing.last_hour_asked(session, username) as asked:  # Prometheus answers while Slurm is read
        try:
            context["page"] = listing.user_jobs_page(username, cluster, page=request.GET.get("page", 1))
            context["accounts"] = _account_filter(request, username, cluster)
            context["use"] = listing.current_use(username, cluster, session, asked=asked)
        except DataSourceError as exc:
            context["unavailable"] = exc.user_message
        else:
            context["table_config"] = _table_config(request, username, context["page"].paginator.count)
    return render(request, "jobstats/user.html", context)


def _account_filter(request: HttpRequest, username: str, cluster: str) -> list[tuple[str, bool]]:
    """The owner's accounts, each with whether the viewer may list every member's jobs in it."""
    viewer = request.user.get_username()
    owned = accounts_of(username, cluster)
    mine = set() if request.user.is_staff else set(owned if viewer == username else accounts_of(viewer, cluster))
    return [(account, request.user.is_staff or account in mine) for account in owned]


def _table_config(request: HttpRequest, username: str, total: int) -> dict[str, Any]:
    """What jobs_table.js needs (read from a json_script element: no inline script)."""
    return {
        "api": reverse("jobstats:api-jobs"),
        "username": username,
        "viewer": request.user.get_username(),
        "staff": request.user.is_staff,
        "jobsUrl": reverse("jobstats:index"),
        "total": total,
        "pageLength": listing.PAGE_SIZE,
        **_table_texts(get_language()),
    }


@functools.cache
def _table_texts(language: str) -> dict[str, Any]:
    """The table's texts in ``language``, the active one (translated once per language and process)."""
    return {
        "language": {
            "search": _("Search:"),
            "lengthMenu": _("_MENU_ jobs per page"),
            "info": _("Jobs _START_ to _END_ of _TOTAL_"),
            "infoEmpty": _("No jobs"),
            "infoFiltered": _("(of _MAX_)"),
            "zeroRecords": _("No job matches."),
            "emptyTable": _("No jobs yet."),
            "processing": _("Loading…"),
            "paginate": {"first": _("First"), "previous": _("Previous"), "next": _("Next"), "last": _("Last")},
        },
        "unlimited": _("unlimited"),
        "error": _("The job list could not be loaded: %(reason)s"),
    }


def user_graph(request: HttpRequest, username: str, name: str) -> JsonResponse:
    spec = USER_GRAPHS.get(name)
    if spec is None:
        return json_error(404, _("No graph of that name."), graphs=sorted(USER_GRAPHS))
    try:
        window = requested(
            delta=request.GET.get("delta"),
            start=request.GET.get("start"),
            end=request.GET.get("end"),
            default=spec.default_delta,
        )
    except WindowError as exc:
        return json_error(400, str(exc))
    return JsonResponse(spec.draw(MetricsSession(), username, window))


def _jobs(username: str, cluster: str, ids: list[int]) -> list[Any]:
    """The newest record of each id (a single id: also an array master without a record of its own)."""
    if len(ids) == 1:
        records = services.find_records(username, cluster, ids[0])
        if records:
            return records[:1]
        return services.array_tasks_of(username, cluster, ids[0])
    return services.jobs_for_ids(username, cluster, ids)


def job(request: HttpRequest, username: str, job_id: str) -> HttpResponse:
    cluster = current_cluster(request)
    array_task = parse_array_task(job_id)
    if array_task is not None:
        return _array_task_redirect(request, username, cluster, *array_task)
    try:
        ids = parse_job_ids(job_id)
    except JobIdError as exc:
        return render(request, "400.html", {"message": str(exc)}, status=400)
    context: dict[str, Any] = {"owner": username, "job_id": format_job_ids(ids), "unavailable": None}
    try:
        if len(ids) == 1:
            records = services.find_records(username, cluster, ids[0])
            if records:
                detail = jobpage.job_page(username, cluster, records, MetricsSession())
                context["detail"] = detail
                context["graphs"] = _graph_links(username, str(ids[0]), detail.graphs, detail.highlights)
                context["cost_labels"] = _cost_labels()
                return render(request, "jobstats/job.html", context)
            jobs = services.array_tasks_of(username, cluster, ids[0])
        else:
            jobs = services.jobs_for_ids(username, cluster, ids)
    except SlurmDatabaseUnavailable as exc:
        context["unavailable"] = exc.user_message
        return render(request, "jobstats/job.html", context)
    if not jobs:
        raise Http404(_("No such job for this user."))
    return render(request, "jobstats/jobs.html", {**context, **_multi_context(username, context["job_id"], jobs)})


def _array_task_redirect(
    request: HttpRequest, username: str, cluster: str, array_id: int, task_id: int
) -> HttpResponse:
    """``<array>_<task>`` (as squeue and sacct print it) names the task's own job id: go there."""
    try:
        task = services.array_task(username, cluster, array_id, task_id)
    except SlurmDatabaseUnavailable as exc:
        context = {"owner": username, "job_id": f"{array_id}_{task_id}", "unavailable": exc.user_message}
        return render(request, "jobstats/job.html", context)
    if task is None:
        raise Http404(_("No such job for this user."))
    url = reverse("jobstats:job", kwargs={"username": username, "job_id": str(task.id_job)})
    query = request.META.get("QUERY_STRING", "")
    return redirect(f"{url}?{query}" if query else url)


def _graph_links(
    username: str, job_id: str, specs: list[Any], highlights: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    return [
        {
            "spec": spec,
            "url": reverse("jobstats:job_graph", kwargs={"username": username, "job_id": job_id, "name": spec.name}),
            "highlight": spec.name in highlights,
        }
        for spec in specs
    ]


def _cost_labels() -> dict[str, str]:
    """Labels of the cost.json figures, for cost.js (read from a json_script element)."""
    return {
        "title": _("Energy and cost (estimate)"),
        "kwh": _("Energy: %(value)s kWh"),
        "electric_car_range_km": _("an electric car drives %(value)s km on it"),
        "co2_emissions_kg": _("CO₂: %(value)s kg"),
        "electricity_cost_dollar": _("electricity %(value)s"),
        "cooling_cost_dollar": _("cooling %(value)s"),
        "hardware_cost_dollar": _("hardware %(value)s"),
        "total_cost_dollar": _("total %(value)s"),
        "cloud_cost_dollar": _("the same in a commercial cloud: about %(value)s"),
        "measured": _("from the nodes' measured power"),
        "gpu-measured": _("from the GPUs' measured power and a rated power per core"),
        "rated": _("from rated power (no power measurements)"),
    }


def _multi_context(username: str, job_id: str, jobs: list[Any]) -> dict[str, Any]:
    catalog = Tres.catalog()
    rows = [services.job_summary(record, catalog) for record in jobs]
    scope = services.job_scope(jobs, catalog)
    started = any(record.time_start for record in jobs)
    specs = job_graphs_for(scope.gpus, len(scope.nodes)) if started else []
    notice = jobusage.metrics_notice(MetricsSession()) if specs else ""
    return {
        "rows": rows,
        "graphs": [] if notice else _graph_links(username, job_id, specs),
        "started": started,
        "metrics_notice": notice,
    }


def job_graph(request: HttpRequest, username: str, job_id: str, name: str) -> JsonResponse:
    spec = JOB_GRAPHS.get(name)
    if spec is None:
        return json_error(404, _("No graph of that name."), graphs=sorted(JOB_GRAPHS))
    try:
        ids = parse_job_ids(job_id)
    except JobIdError as exc:
        return json_error(400, str(exc))
    cluster = current_cluster(request)
    jobs = _jobs(username, cluster, ids)
    if not jobs:
        return json_error(404, _("No such job for this user."))
    try:
        window = job_window(jobs, start=request.GET.get("start"), end=request.GET.get("end"))
    except WindowError as exc:
        return json_error(400, str(exc))
    if window is None:
        return JsonResponse(no_data(str(spec.title), _("The job has not started yet.")))
    return JsonResponse(spec.draw(MetricsSession(), services.job_scope(jobs), window))


def job_cost(request: HttpRequest, username: str, job_id: str) -> JsonResponse:
    try:
        ids = parse_job_ids(job_id)
    except JobIdError as exc:
        return json_error(400, str(exc))
    if len(ids) != 1:
        return json_error(400, _("The cost is given for one job at a time."))
    records = services.find_records(username, current_cluster(request), ids[0])
    if not records:
        return json_error(404, _("No such job for this user."))
    return JsonResponse(energy.cost_of(records[0], MetricsSession()))
