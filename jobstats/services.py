"""jobstats' domain functions: plain data for the pages, the API, the home page and tasks.

Views call these; these call slurm.visibility (the one "which jobs may this user see" query),
the per-cluster models, Prometheus through jobstats.domain.metrics, and the pure functions of
jobstats.domain. Every function runs a bounded number of queries, whatever the number of jobs.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import DatabaseError
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from jobstats.domain import advice as advice_rules
from jobstats.domain import pending as pending_domain
from jobstats.domain.cost import Prices, job_cost, rated_watts
from jobstats.domain.efficiency import Efficiency, JobUsage, accounting_usage, prometheus_usage, summarise
from jobstats.domain.graphs import JobScope, Window, job_graphs_for, node_power, user_expressions
from jobstats.domain.metrics import MetricsSession, by_tag, finite, union
from jobstats.domain.submitline import (
    Dependencies,
    SubmitOptions,
    dependencies_of,
    parse_script_directives,
    parse_submit_line,
)
from slurm.decoders import (
    NO_VAL,
    STATE_FILTER_CHOICES,
    STATE_LABELS,
    StateInfo,
    TresCatalog,
    compress_hostlist,
    decode_exit_code,
    decode_state,
    epoch_to_datetime,
    expand_hostlist,
    format_duration,
    format_job_id,
    format_timelimit,
    job_memory_mb,
    parse_tres,
    state_filter,
)
from slurm.models import Qos, Tres, cluster_models
from slurm.visibility import jobs_of_user, jobs_of_user_by_uid, jobs_visible_to, uid_of
from userportal.errors import DataSourceError, PrometheusUnavailable, SlurmDatabaseUnavailable
from userportal.prometheus import step_for

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
MAX_RECORDS = 20  # records of one reused job id shown on its page
MAX_ARRAY_TASKS = 1000
MAX_STEPS_SHOWN = 200
MAX_STEPS_READ = 5000
MAX_EVENTS = 100
MAX_EVENT_NODES = 500
MAX_DEPENDENTS = 200
MAX_LINKED = 200  # jobs named by a dependency list, or waiting for this one, that get a state badge
HOUR = 3600

# Only the columns the pages show: never "all model fields" of a Slurm table.
LIST_COLUMNS = (
    "job_db_inx", "id_job", "id_array_job", "id_array_task", "het_job_id", "het_job_offset", "array_task_str",
    "array_max_tasks", "job_name", "account", "partition", "state", "exit_code", "time_submit", "time_start",
    "time_end", "timelimit", "cpus_req", "mem_req", "nodes_alloc", "nodelist", "tres_alloc", "tres_req",
)  # fmt: skip


@dataclass(frozen=True)
class Figure:
    label: Any
    value: Any


@dataclass(frozen=True)
class JobRow:
    job_db_inx: int
    id_job: int
    display_id: str
    name: str
    account: str
    partition: str
    state: StateInfo
    exit_code: str
    submit: datetime | None
    start: datetime | None
    end: datetime | None
    elapsed: str
    timelimit: str
    cpus: int
    memory_mb: int | None
    gpus: int
    gpu_types: dict[str, int]
    nodes: list[str]


def tres_catalog() -> TresCatalog:
    return Tres.catalog()


def _slurm_db(exc: DatabaseError) -> SlurmDatabaseUnavailable:
    return SlurmDatabaseUnavailable(str(exc))


def job_row(job: Any, catalog: TresCatalog, *, now: float | None = None) -> JobRow:
    alloc = parse_tres(job.tres_alloc)
    tres = alloc or parse_tres(job.tres_req)
    start = job.time_start or 0
    end = job.time_end or 0
    if start and not end:
        end = int(now or time.time())
    cpus = tres.get(catalog.cpu or 1, 0) or int(job.cpus_req or 0)
    return JobRow(
        job_db_inx=job.job_db_inx,
        id_job=job.id_job,
        display_id=format_job_id(
            job.id_job,
            job.id_array_job,
            job.id_array_task,
            job.het_job_id,
            job.het_job_offset,
            job.array_task_str,
            job.array_max_tasks,
        ),
        name=job.job_name or "",
        account=job.account or "",
        partition=job.partition or "",
        state=decode_state(job.state),
        exit_code=str(decode_exit_code(job.exit_code)),
        submit=epoch_to_datetime(job.time_submit),
        start=epoch_to_datetime(job.time_start),
        end=epoch_to_datetime(job.time_end),
        elapsed=format_duration(end - start) if start else "",
        timelimit=format_timelimit(job.timelimit),
        cpus=cpus,
        memory_mb=job_memory_mb(job.mem_req, cpus=cpus, nodes=job.nodes_alloc or 1, tres_alloc=alloc),
        gpus=catalog.gpu_count(tres),
        gpu_types=catalog.gpus_by_type(tres),
        nodes=expand_hostlist(job.nodelist),
    )


# The jobs table's order: most recently started first, as TT's API; the pending jobs (never
# started) come last there and are listed separately on the user page. Ties are broken as the
# job table's sacct_def index (id_user, time_start, time_end) orders its entries, so a user's
# listing is read backwards along that index and stops after one page (no sort of all the rows).
DEFAULT_ORDER = ("-time_start", "-time_end", "-job_db_inx")
ASCENDING_ORDER = ("time_start", "time_end", "job_db_inx")
# Orders the API accepts that are the index order (the serializer appends -job_db_inx).
INDEX_ORDERS = {
    ("-time_start", "-job_db_inx"): DEFAULT_ORDER,
    DEFAULT_ORDER: DEFAULT_ORDER,
    ("time_start", "-job_db_inx"): ASCENDING_ORDER,
    ("time_start", "job_db_inx"): ASCENDING_ORDER,
    ASCENDING_ORDER: ASCENDING_ORDER,
}
COUNT_CACHE_SECONDS = 300


def own_jobs(username: str, cluster: str) -> QuerySet[Any]:
    """jobs_of_user(), found through the (id_user, ...) indexes (slurm.visibility.jobs_of_user_by_uid)."""
    return jobs_of_user_by_uid(username, cluster)


def cached_count(queryset: QuerySet[Any], *, seconds: int = COUNT_CACHE_SECONDS) -> int:
    """``queryset.count()``, cached for ``seconds`` under its SQL: a count of 50,000 rows every few minutes, not per page."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    key = "jobstats:count:" + hashlib.sha256(f"{queryset.db}|{sql}|{params!r}".encode()).hexdigest()
    found = cache.get(key)
    if found is None:
        found = queryset.count()
        cache.set(key, found, seconds)
    return int(found)


class CachedCountPaginator(Paginator):
    @property
    def count(self) -> int:
        if not hasattr(self, "_cached_count"):
            self._cached_count = cached_count(self.object_list)  # type: ignore[arg-type]
        return self._cached_count


def _index_page(
    jobs: QuerySet[Any], uid: int | None, total: int, order: tuple[str, ...], offset: int, limit: int
) -> QuerySet[Any] | None:
    """A deep page (OFFSET) read from the sacct_def index alone, then its rows by key; None if not exact.

    ``SELECT job_db_inx ... WHERE id_user = uid ORDER BY time_start, time_end, job_db_inx``
    walks the index without touching a row. It is only used when every row of that uid is
    visible (the index-only count equals the visible total), so the page is the same as the
    plain query's; else the caller runs the plain query.
    """
    if uid is None or offset < 2 * limit or order not in (DEFAULT_ORDER, ASCENDING_ORDER):
        return None
    by_uid = cluster_jobs(jobs).filter(id_user=uid)
    if cached_count(by_uid) != total:
        return None
    keys = list(by_uid.order_by(*order).values_list("job_db_inx", flat=True)[offset : offset + limit])
    return jobs.filter(job_db_inx__in=keys)


def cluster_jobs(jobs: QuerySet[Any]) -> QuerySet[Any]:
    """Every row of the job table of ``jobs``' model (no visibility filter: callers narrow it)."""
    return jobs.model.objects.using(jobs.db).all()


def user_jobs_page(username: str, cluster: str, *, page: int | str = 1) -> Page[Any]:
    """One page of a user's jobs, newest first, as JobRow objects (a cached count and one page query)."""
    try:
        queryset = own_jobs(username, cluster).only(*LIST_COLUMNS).order_by(*DEFAULT_ORDER)
        paginator = CachedCountPaginator(queryset, PAGE_SIZE)
        catalog = tres_catalog()
        result = paginator.get_page(page)
        result.object_list = [job_row(job, catalog) for job in result.object_list]
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    return result


def headline(user: Any, *, cluster: str) -> list[Figure]:
    """The user's figures for the home page card: one aggregate query."""
    since = int(time.time()) - 30 * 86400
    jobs = jobs_of_user(user.get_username(), cluster)
    try:
        totals = jobs.aggregate(
            running=Count("job_db_inx", filter=Q(state=1, time_end=0)),
            pending=Count("job_db_inx", filter=Q(state=0, time_start=0, time_end=0)),
            finished=Count("job_db_inx", filter=Q(time_end__gte=since)),
            cpu_seconds=Sum(
                (F("time_end") - F("time_start")) * F("cpus_req"), filter=Q(time_end__gte=since, time_start__gt=0)
            ),
        )
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    return [
        Figure(gettext_lazy("Running jobs"), totals["running"]),
        Figure(gettext_lazy("Pending jobs"), totals["pending"]),
        Figure(gettext_lazy("Jobs ended, last 30 days"), totals["finished"]),
        Figure(gettext_lazy("CPU-hours, last 30 days"), f"{(totals['cpu_seconds'] or 0) / 3600:,.0f}"),
    ]


# --- The user page: current use -------------------------------------------------------------
@dataclass(frozen=True)
class Use:
    allocated: float
    used: float | None  # None: Prometheus did not answer, or has no series

    @property
    def percent(self) -> int | None:
        if self.used is None or not self.allocated:
            return None
        return round(100 * self.used / self.allocated)


@dataclass(frozen=True)
class CurrentUse:
    running: int
    pending: int
    cores: Use
    memory_gib: Use
    gpus: Use
    metrics_notice: str = ""


MAX_RUNNING_READ = 10_000


def current_use(username: str, cluster: str, session: MetricsSession, *, now: float | None = None) -> CurrentUse:
    """Allocated now (Σ over running jobs, from the database) against used over the last hour (Prometheus)."""
    try:
        jobs = own_jobs(username, cluster)  # time_end=0 on (id_user, time_end, ...): the running and pending rows only
        catalog = tres_catalog()
        running = list(
            jobs.filter(time_start__gt=0, time_end=0).values_list("tres_alloc", "cpus_req", "mem_req", "nodes_alloc")[
                :MAX_RUNNING_READ
            ]
        )
        pending = jobs.filter(time_start=0, time_end=0, state=0).count()
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    cores = memory_mb = gpus = 0
    for tres_text, cpus_req, mem_req, nodes in running:
        tres = parse_tres(tres_text)
        job_cores = tres.get(catalog.cpu or 1, 0) or int(cpus_req or 0)
        cores += job_cores
        memory_mb += job_memory_mb(mem_req, cpus=job_cores, nodes=nodes or 1, tres_alloc=tres) or 0
        gpus += catalog.gpu_count(tres)
    used: dict[str, float | None] = {"cores": None, "mem": None, "gpus": None}
    notice = ""
    if "job" in settings.JOBSTATS_METRICS:  # slurm-job-exporter measures what is used
        try:
            used = used_last_hour(session, username, now=now)
        except PrometheusUnavailable as exc:
            notice = str(exc.user_message)
    return CurrentUse(
        running=len(running),
        pending=pending,
        cores=Use(cores, used["cores"]),
        memory_gib=Use(
            round(memory_mb / 1024, 1), round(used["mem"] / 1024**3, 1) if used["mem"] is not None else None
        ),
        gpus=Use(gpus, used["gpus"]),
        metrics_notice=notice,
    )


def used_last_hour(session: MetricsSession, username: str, *, now: float | None = None) -> dict[str, float | None]:
    """Mean cores in use, peak memory (bytes) and peak GPUs in use over the last hour, in one query."""
    end = now or time.time()
    step = step_for(end - HOUR, end)
    series = user_expressions(username, step)
    window = f"[{HOUR}s:{step}s]"
    parts = {
        "hour_cores": f"avg_over_time(({series['cores_used']}){window})",
        "hour_mem": f"max_over_time(({series['mem_max']}){window})",
        "hour_gpus": f"max_over_time(({series['gpus_used']}){window})",
    }
    found = by_tag(session.query(union(parts), at=end))
    result: dict[str, float | None] = {}
    for key in parts:
        values = [finite(sample.value) for sample in found.get(key, [])]
        present = [v for v in values if v is not None]
        result[key.removeprefix("hour_")] = round(max(present), 2) if present else 0.0
    return result


# --- The job page -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Resources:
    cpus: int
    memory_mb: int | None
    gpus: int
    gpu_types: dict[str, int]
    nodes: int


@dataclass(frozen=True)
class StepRow:
    id: str
    name: str
    state: StateInfo
    exit_code: str
    start: datetime | None
    end: datetime | None
    elapsed: str
    cpu_time: str
    max_rss_mb: float | None
    tasks: int
    nodes: str


@dataclass(frozen=True)
class EventRow:
    node: str
    start: datetime | None
    end: datetime | None
    reason: str


@dataclass(frozen=True)
class LinkedJob:
    id_job: int
    display_id: str
    state: StateInfo | None
    kind: str = ""  # the dependency type, e.g. afterok
    minutes: int | None = None


@dataclass(frozen=True)
class Progress:
    elapsed: str
    limit: str
    percent: int | None  # None: no limit

    @property
    def bar(self) -> int:
        return min(self.percent or 0, 100)


@dataclass
class JobDetail:
    job: Any
    row: JobRow
    others: list[JobRow]
    qos: str
    flags: tuple[str, ...]
    exit_code: str
    derived_exit_code: str
    kill_requid: int | None
    wait: str
    progress: Progress
    requested: Resources
    allocated: Resources | None
    nodelist: str
    nodes: list[str]
    submit_line: str
    work_dir: str
    options: SubmitOptions
    dependencies: list[LinkedJob]
    dependency_mode: str
    singleton: bool
    dependents: list[LinkedJob]
    array_tasks: list[JobRow]
    array_states: list[tuple[StateInfo, int]]
    events: list[EventRow]
    script: str | None
    script_notice: str
    steps: list[StepRow]
    more_steps: int
    efficiency: Efficiency | None
    usage: JobUsage | None
    metrics_notice: str
    advice: list[advice_rules.Finding]
    pending: pending_domain.PendingInfo | None
    graphs: list[Any]
    highlights: frozenset[str] = field(default=frozenset())

    @property
    def is_pending(self) -> bool:
        return not self.job.time_start and not self.job.time_end

    @property
    def is_running(self) -> bool:
        return bool(self.job.time_start) and not self.job.time_end


def _now(now: float | None) -> int:
    return int(now if now is not None else time.time())


def _resources(tres: dict[int, int], catalog: TresCatalog, job: Any) -> Resources:
    cpus = tres.get(catalog.cpu or 1, 0) or int(job.cpus_req or 0)
    return Resources(
        cpus=cpus,
        memory_mb=job_memory_mb(
            job.mem_req, cpus=cpus, nodes=job.nodes_alloc or 1, tres_alloc=tres if tres.get(2) else None
        ),
        gpus=catalog.gpu_count(tres),
        gpu_types=catalog.gpus_by_type(tres),
        nodes=tres.get(catalog.node or 4, 0) or int(job.nodes_alloc or 0),
    )


def _progress(job: Any, now: int) -> Progress:
    elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
    limit = job.timelimit_minutes
    percent = round(100 * elapsed / (limit * 60)) if limit and job.time_start else None
    return Progress(format_duration(elapsed), format_timelimit(job.timelimit), percent)


def find_records(username: str, cluster: str, job_id: int) -> list[Any]:
    """The user's records of ``job_id``, most recent first (full rows: the model declares only common columns)."""
    try:
        return list(
            own_jobs(username, cluster).filter(id_job=job_id).order_by("-time_submit", "-job_db_inx")[:MAX_RECORDS]
        )
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc


def _latest_states(username: str, cluster: str, ids: Sequence[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = (
        own_jobs(username, cluster)
        .filter(id_job__in=list(ids))
        .only(
            "job_db_inx",
            "id_job",
            "id_array_job",
            "id_array_task",
            "het_job_id",
            "het_job_offset",
            "array_task_str",
            "array_max_tasks",
            "state",
            "time_submit",
        )
        .order_by("id_job", "time_submit")
    )
    latest: dict[int, Any] = {}
    for row in rows[: 4 * len(ids)]:
        latest[row.id_job] = row  # ordered by time_submit: the last one wins
    return latest


def dependents_of(job: Any, username: str, cluster: str, *, now: int) -> list[int]:
    """Ids of the user's jobs whose submit line depends on ``job`` (cached).

    Bounded: only jobs submitted after this one and before it ended (or now) can wait for it,
    and the submit line must contain the id as text before it is parsed properly.
    """
    end = job.time_end or now
    key = f"jobstats:dependents:{cluster}:{job.job_db_inx}:{job.time_end}"
    cached = cache.get(key)
    if cached is not None:
        return list(cached)
    rows = (
        own_jobs(username, cluster)
        .filter(time_submit__gte=job.time_submit, time_submit__lte=end, submit_line__contains=str(job.id_job))
        .exclude(job_db_inx=job.job_db_inx)
        .values_list("id_job", "submit_line")[:MAX_DEPENDENTS]
    )
    found = sorted({id_job for id_job, line in rows if job.id_job in dependencies_of(parse_submit_line(line)).job_ids})
    cache.set(key, found, 86400 if job.time_end else 120)
    return found


def _events(cluster: str, nodes: list[str], start: int, end: int) -> list[EventRow]:
    if not nodes or not start:
        return []
    event = cluster_models(cluster).event
    rows = (
        event.objects.filter(node_name__in=nodes[:MAX_EVENT_NODES], time_start__lte=end + HOUR)
        .filter(Q(time_end=0) | Q(time_end__gte=start - HOUR))
        .only("node_name", "time_start", "time_end", "reason")
        .order_by("time_start")[:MAX_EVENTS]
    )
    return [EventRow(r.node_name, r.start_time, r.end_time, r.reason) for r in rows]


def _steps(job: Any, catalog: TresCatalog) -> tuple[list[StepRow], int, list[Any]]:
    rows = list(
        job.steps()
        .only(
            "job_db_inx",
            "id_step",
            "step_het_comp",
            "step_name",
            "state",
            "exit_code",
            "nodelist",
            "task_cnt",
            "time_start",
            "time_end",
            "time_suspended",
            "user_sec",
            "user_usec",
            "sys_sec",
            "sys_usec",
            "tres_usage_in_max",
        )
        .order_by("time_start", "id_step")[:MAX_STEPS_READ]
    )
    shown = []
    for step in rows[:MAX_STEPS_SHOWN]:
        end = step.time_end or _now(None)
        rss = step.max_rss_bytes
        shown.append(
            StepRow(
                id=step.display_id(job.display_id),
                name=step.step_name or "",
                state=step.state_info,
                exit_code=str(step.exit),
                start=step.start_time,
                end=step.end_time,
                elapsed=format_duration(end - step.time_start) if step.time_start else "",
                cpu_time=format_duration(step.cpu_seconds),
                max_rss_mb=round(rss / 1024**2, 1) if rss is not None else None,
                tasks=step.task_cnt,
                nodes=step.nodelist or "",
            )
        )
    return shown, max(len(rows) - MAX_STEPS_SHOWN, 0), rows


def _script(cluster: str, job: Any) -> tuple[str | None, str]:
    """The job script from jobstats.jobscripts (guarded: that module may not be there yet)."""
    try:
        from jobstats.jobscripts import script_for
    except (ImportError, AttributeError):
        return None, ""
    try:
        return script_for(cluster=cluster, job=job), ""
    except DataSourceError as exc:
        return None, str(exc.user_message)


def _qos_row(qos_id: int) -> Any:
    return Qos.objects.filter(id=qos_id).first() if qos_id else None


def _dependency_links(deps: Dependencies, latest: dict[int, Any]) -> list[LinkedJob]:
    links = []
    for item in deps.items:
        row = latest.get(item.job_id)
        display = f"{item.job_id}_{item.array_task}" if item.array_task else str(item.job_id)
        links.append(
            LinkedJob(
                item.job_id, display, decode_state(row.state) if row is not None else None, item.type, item.minutes
            )
        )
    return links


def job_usage(session: MetricsSession, job: Any, steps: Iterable[Any], *, now: int) -> tuple[JobUsage | None, str]:
    """Usage from Prometheus when it has the job, else from the steps; and a notice when Prometheus is down."""
    if not job.time_start:
        return None, ""
    end = job.time_end or now
    elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
    notice = ""
    usage: JobUsage | None = None
    if "job" in settings.JOBSTATS_METRICS:
        key = f"jobstats:usage:{job.cluster}:{job.job_db_inx}"
        cached = cache.get(key) if job.time_end else None
        if cached is not None:
            usage = cached
            notice = metrics_notice(session)  # the figures are kept, but the graphs still need Prometheus
        else:
            try:
                usage = prometheus_usage(session, job.id_job, job.time_start, end)
            except PrometheusUnavailable as exc:
                notice = str(exc.user_message)
            else:
                if usage is not None and job.time_end and now - job.time_end > 600:
                    cache.set(key, usage, 6 * HOUR)  # a finished job's figures no longer change
    if usage is None:
        usage = accounting_usage(steps, elapsed)
    return usage, notice


def job_facts(
    job: Any,
    *,
    resources: Resources,
    options: SubmitOptions,
    deps: Dependencies,
    dependents: Sequence[int],
    script: str | None,
    usage: JobUsage | None,
    efficiency: Efficiency | None,
    qos: str,
    events: int,
    now: int,
) -> advice_rules.JobFacts:
    state = decode_state(job.state)
    exit_code = decode_exit_code(job.exit_code)
    elapsed = job.elapsed_seconds(datetime.fromtimestamp(now, tz=UTC))
    exclusive = options.value("exclusive")
    cpu = efficiency.get("cpu") if efficiency else None
    mem = efficiency.get("memory") if efficiency else None
    return advice_rules.JobFacts(
        state=state.name,
        exit_code=exit_code.code,
        exit_signal=exit_code.signal,
        started=bool(job.time_start),
        running=bool(job.time_start) and not job.time_end,
        cores=resources.cpus,
        nodes=resources.nodes,
        gpus=resources.gpus,
        gpu_type=next(iter(resources.gpu_types), ""),
        memory_mb=resources.memory_mb or 0,
        timelimit_minutes=job.timelimit_minutes or 0,
        elapsed_seconds=float(elapsed),
        elapsed_hours=elapsed / 3600,
        partition=job.partition or "",
        account=job.account or "",
        qos=qos,
        work_dir=job.work_dir or "",
        job_name=job.job_name or "",
        is_array=job.is_array_task,
        has_submit_line=bool(job.submit_line),
        options=options.names,
        exclusive=exclusive is not None and exclusive not in ("0",),
        excluded_nodes=options.value("exclude") or "",
        requested_nodelist=options.value("nodelist") or "",
        licenses=options.value("licenses") or "",
        reservation=options.value("reservation") or "",
        switches=options.value("switches") or "",
        requeue=options.has("requeue"),
        no_requeue=options.has("no-requeue"),
        dependencies=tuple(deps.job_ids),
        singleton=deps.singleton,
        dependents=tuple(dependents),
        has_script=bool(script),
        script=script or "",
        modules=advice_rules.modules_loaded(script or ""),
        usage_source=usage.source if usage else "",
        cores_used=usage.cores_used if usage else None,
        cpu_efficiency=cpu.fraction if cpu else None,
        mem_max_mb=usage.mem_max_bytes / 1024**2 if usage and usage.mem_max_bytes is not None else None,
        mem_efficiency=mem.fraction if mem else None,
        gpu_util=usage.gpu_util if usage else None,
        gpus_seen=usage.gpus_seen if usage else None,
        threads_running=usage.threads_running if usage else None,
        node_events=events,
    )


def job_detail(
    username: str, cluster: str, records: list[Any], session: MetricsSession, *, now: float | None = None
) -> JobDetail:
    """Everything the job page shows about the most recent of ``records`` (same id_job, newest first)."""
    current = _now(now)
    job = records[0]
    try:
        catalog = tres_catalog()
        qos_row = _qos_row(job.id_qos)
        steps, more_steps, all_steps = _steps(job, catalog)
        nodes = job.nodes
        events = _events(cluster, nodes, job.time_start, job.time_end or current)
        options = parse_submit_line(job.submit_line)
        script, script_notice = _script(cluster, job)
        if script:
            options = options.merged_over(parse_script_directives(script))
        deps = dependencies_of(options)
        dependents = dependents_of(job, username, cluster, now=current)
        latest = _latest_states(username, cluster, sorted(set(deps.job_ids) | set(dependents))[:MAX_LINKED])
        array_tasks: list[Any] = []
        if job.id_array_job:
            array_tasks = list(
                own_jobs(username, cluster)
                .filter(id_array_job=job.id_array_job)
                .only(*LIST_COLUMNS)
                .order_by("id_array_task", "-time_submit")[:MAX_ARRAY_TASKS]
            )
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    row = job_row(job, catalog, now=current)
    requested = _resources(parse_tres(job.tres_req), catalog, job)
    allocated = _resources(parse_tres(job.tres_alloc), catalog, job) if job.tres_alloc else None
    resources = allocated or requested
    usage, metrics_notice = job_usage(session, job, all_steps, now=current)
    prices = Prices.from_settings()
    efficiency = None
    if usage is not None:
        efficiency = summarise(
            usage,
            cores=resources.cpus,
            gpus=resources.gpus,
            memory_mb=resources.memory_mb,
            elapsed=job.elapsed_seconds(datetime.fromtimestamp(current, tz=UTC)),
            timelimit_minutes=job.timelimit_minutes,
            state=row.state.name,
            running=bool(job.time_start) and not job.time_end,
            hardware_core_hour=prices.hardware_core_hour,
            hardware_gpu_hour=prices.hardware_gpu_hour,
            currency=prices.currency,
        )
    qos_name = qos_row.name if qos_row is not None else (str(job.id_qos) if job.id_qos else "")
    facts = job_facts(
        job,
        resources=resources,
        options=options,
        deps=deps,
        dependents=dependents,
        script=script,
        usage=usage,
        efficiency=efficiency,
        qos=qos_name,
        events=len(events),
        now=current,
    )
    findings = advice_rules.evaluate(facts)
    pending = None
    if not job.time_start and not job.time_end:
        pending = pending_info(job, cluster, qos_row, catalog, deps, now=current)
    task_rows = [job_row(task, catalog, now=current) for task in array_tasks]
    graphs = job_graphs_for(resources.gpus, len(nodes)) if job.time_start else []
    return JobDetail(
        job=job,
        row=row,
        others=[job_row(other, catalog, now=current) for other in records[1:]],
        qos=qos_name,
        flags=row.state.flags,
        exit_code=str(decode_exit_code(job.exit_code)),
        derived_exit_code=str(decode_exit_code(job.derived_ec)),
        kill_requid=job.kill_requid,
        wait=format_duration((job.time_start or current) - (job.time_eligible or job.time_submit))
        if job.time_submit
        else "",
        progress=_progress(job, current),
        requested=requested,
        allocated=allocated,
        nodelist=compress_hostlist(nodes) if nodes else "",
        nodes=nodes,
        submit_line=job.submit_line or "",
        work_dir=job.work_dir or "",
        options=options,
        dependencies=_dependency_links(deps, latest)[:MAX_LINKED],
        dependency_mode="any" if deps.any_of else "all",
        singleton=deps.singleton,
        dependents=[LinkedJob(i, str(i), decode_state(latest[i].state) if i in latest else None) for i in dependents],
        array_tasks=task_rows,
        array_states=sorted(Counter(r.state for r in task_rows).items(), key=lambda item: item[0].name),
        events=events,
        script=script,
        script_notice=script_notice,
        steps=steps,
        more_steps=more_steps,
        efficiency=efficiency,
        usage=usage,
        metrics_notice=metrics_notice,
        advice=findings,
        pending=pending,
        graphs=graphs,
        highlights=frozenset(h for f in findings for h in f.highlights),
    )


# --- Pending jobs ------------------------------------------------------------------------------
def _tres_text(tres_text: str, catalog: TresCatalog) -> str:
    named = catalog.named(parse_tres(tres_text))
    return ", ".join(f"{name}={count}" for name, count in sorted(named.items()))


def qos_limits(qos: Any, catalog: TresCatalog) -> list[str]:
    """The limits a QOS sets, in words (empty parts left out)."""
    if qos is None:
        return []
    name = qos.name
    found = []
    for attr, words in (
        ("grp_tres", _("for all its users together")),
        ("max_tres_pu", _("per user")),
        ("max_tres_pa", _("per account")),
        ("max_tres_pj", _("per job")),
    ):
        text = _tres_text(getattr(qos, attr), catalog)
        if text:
            found.append(_("QOS %(qos)s allows %(tres)s %(scope)s.") % {"qos": name, "tres": text, "scope": words})
    for attr, words in (
        ("max_jobs_per_user", _("running jobs per user")),
        ("max_jobs_pa", _("running jobs per account")),
        ("grp_jobs", _("running jobs in all")),
        ("max_submit_jobs_per_user", _("queued jobs per user")),
    ):
        value = getattr(qos, attr)
        if value is not None and value >= 0:
            found.append(_("QOS %(qos)s allows %(count)d %(what)s.") % {"qos": name, "count": value, "what": words})
    if qos.max_wall_duration_per_job:
        found.append(
            _("QOS %(qos)s allows jobs of at most %(limit)s.")
            % {"qos": name, "limit": format_timelimit(qos.max_wall_duration_per_job)}
        )
    return found


def association_limits(cluster: str, id_assoc: int, catalog: TresCatalog, *, max_depth: int = 8) -> list[str]:
    """Limits on the job's association and the accounts above it (a few small queries)."""
    assoc = cluster_models(cluster).assoc
    columns = (
        "id_assoc",
        "user",
        "acct",
        "parent_acct",
        "grp_tres",
        "grp_jobs",
        "max_jobs",
        "max_tres_pj",
        "max_wall_pj",
        "max_submit_jobs",
    )
    row = assoc.objects.filter(id_assoc=id_assoc).only(*columns).first()
    found: list[str] = []
    depth = 0
    while row is not None and depth < max_depth:
        who = (
            _("your association in %(account)s") % {"account": row.acct}
            if row.user
            else _("account %(account)s") % {"account": row.acct}
        )
        grp = _tres_text(row.grp_tres, catalog)
        if grp:
            found.append(_("%(who)s allows %(tres)s for all its jobs together.") % {"who": who, "tres": grp})
        per_job = _tres_text(row.max_tres_pj, catalog)
        if per_job:
            found.append(_("%(who)s allows %(tres)s per job.") % {"who": who, "tres": per_job})
        for attr, words in (
            ("grp_jobs", _("running jobs in all")),
            ("max_jobs", _("running jobs")),
            ("max_submit_jobs", _("queued jobs")),
        ):
            value = getattr(row, attr)
            if value is not None and value >= 0:
                found.append(_("%(who)s allows %(count)d %(what)s.") % {"who": who, "count": value, "what": words})
        if row.max_wall_pj:
            found.append(
                _("%(who)s allows jobs of at most %(limit)s.")
                % {"who": who, "limit": format_timelimit(row.max_wall_pj)}
            )
        parent = row.acct if row.user else row.parent_acct
        if not parent or (not row.user and row.acct == "root"):
            break
        row = assoc.objects.filter(user="", acct=parent, deleted=0).only(*columns).first()
        depth += 1
    return found


def _squeue(job_id: int) -> pending_domain.SqueueAnswer | None:
    key = f"jobstats:squeue:{job_id}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    answer = pending_domain.run_squeue(job_id, squeue=settings.SLURM_SQUEUE, timeout=settings.SLURM_SQUEUE_TIMEOUT)
    cache.set(key, answer or False, 60)
    return answer


def pending_info(
    job: Any, cluster: str, qos: Any, catalog: TresCatalog, deps: Dependencies, *, now: int
) -> pending_domain.PendingInfo:
    """Why the job waits (squeue when it answers, else what the database suggests) and the limits that apply."""
    answer = _squeue(job.id_job)
    source = "squeue" if answer is not None else ""
    reason = answer.reason if answer is not None else ""
    if not reason:
        if job.time_eligible and job.time_eligible > now:
            reason = "BeginTime"
        elif deps:
            reason = "Dependency"
        elif job.state_reason_prev and job.state_reason_prev in pending_domain.REASON_CODES:
            reason = pending_domain.REASON_CODES[job.state_reason_prev]
        source = source or ("accounting" if reason else "")
    limits = qos_limits(qos, catalog)
    try:
        limits += association_limits(cluster, job.id_assoc, catalog)
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    relevant = limits
    if reason.startswith("QOS"):
        relevant = [text for text in limits if text.startswith("QOS")]
    elif reason.startswith("Assoc"):
        relevant = [text for text in limits if not text.startswith("QOS")]
    return pending_domain.PendingInfo(
        reason=reason,
        sentence=pending_domain.explain_reason(reason),
        limit=" ".join(relevant),
        start_estimate=answer.start if answer is not None else None,
        priority=answer.priority if answer is not None and answer.priority is not None else (job.priority or None),
        source=source,
    )


def metrics_notice(session: MetricsSession) -> str:
    """ "" when Prometheus answers a trivial query, else the notice to show where graphs would be."""
    try:
        session.query("vector(1)")
    except PrometheusUnavailable as exc:
        return str(exc.user_message)
    return ""


# --- Several jobs (a job-id list) --------------------------------------------------------------
def jobs_for_ids(username: str, cluster: str, ids: Sequence[int]) -> list[Any]:
    """The most recent record of each id of ``ids`` that belongs to the user (one query)."""
    try:
        rows = list(
            own_jobs(username, cluster).filter(id_job__in=list(ids)).order_by("id_job", "time_submit")[: 4 * len(ids)]
        )
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    latest: dict[int, Any] = {}
    for row in rows:
        latest[row.id_job] = row
    return [latest[i] for i in sorted(latest)]


def array_tasks_of(username: str, cluster: str, master: int) -> list[Any]:
    """An array's task records, for a master id with no record of its own."""
    try:
        return list(own_jobs(username, cluster).filter(id_array_job=master).order_by("id_array_task")[:MAX_ARRAY_TASKS])
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc


def array_task(username: str, cluster: str, array_id: int, task_id: int) -> Any | None:
    """The newest record of task ``task_id`` of array ``array_id`` that belongs to the user, or None."""
    try:
        return (
            own_jobs(username, cluster)
            .filter(id_array_job=array_id, id_array_task=task_id)
            .order_by("-time_submit", "-job_db_inx")
            .first()
        )
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc


def job_scope(jobs: Sequence[Any], catalog: TresCatalog | None = None) -> JobScope:
    catalog = catalog or tres_catalog()
    nodes: list[str] = []
    cpus = gpus = 0
    gpu_type = None
    for job in jobs:
        tres = parse_tres(job.tres_alloc) or parse_tres(job.tres_req)
        cpus += tres.get(catalog.cpu or 1, 0) or int(job.cpus_req or 0)
        gpus += catalog.gpu_count(tres)
        gpu_type = gpu_type or next(iter(catalog.gpus_by_type(tres)), None)
        for node in job.nodes:
            if node not in nodes:
                nodes.append(node)
    return JobScope(tuple(j.id_job for j in jobs), tuple(nodes), cpus, gpus, gpu_type)


class WindowError(ValueError):
    """Bad start/end/delta parameters (a 400)."""


def _epoch_param(value: str | None, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except ValueError:
        raise WindowError(_("%(name)s must be a number of seconds since 1970 (UTC).") % {"name": name}) from None
    if not 0 <= number < 253402300800:
        raise WindowError(_("%(name)s is out of range.") % {"name": name})
    return number


def job_window(jobs: Sequence[Any], *, start: str | None, end: str | None, now: float | None = None) -> Window | None:
    """The jobs' run (earliest start to latest end, or now), narrowed by ``start``/``end``; None if none started."""
    current = float(now if now is not None else time.time())
    starts = [j.time_start for j in jobs if j.time_start]
    if not starts:
        return None
    first = float(min(starts))
    last = float(current if any(not j.time_end for j in jobs if j.time_start) else max(j.time_end for j in jobs))
    last = min(last, current)
    wanted_start, wanted_end = _epoch_param(start, "start"), _epoch_param(end, "end")
    if wanted_start is not None:
        first = max(first, wanted_start)
    if wanted_end is not None:
        last = min(last, wanted_end)
    if last <= first:
        if wanted_start is not None or wanted_end is not None:
            raise WindowError(_("The period asked for is outside the job's run."))
        last = first + 60
    return Window.of(first, last)


MAX_DELTA = 180 * 86400


def user_window(
    *, delta: str | None, start: str | None, end: str | None, default_delta: int, now: float | None = None
) -> Window:
    """``?delta=<seconds>`` back from now, or ``?start=&end=``, clamped to now and to 180 days."""
    current = float(now if now is not None else time.time())
    wanted_start, wanted_end = _epoch_param(start, "start"), _epoch_param(end, "end")
    if wanted_start is not None or wanted_end is not None:
        last = min(wanted_end if wanted_end is not None else current, current)
        first = wanted_start if wanted_start is not None else last - default_delta
        if last <= first:
            raise WindowError(_("end must be after start."))
        first = max(first, last - MAX_DELTA)
        return Window.of(first, last)
    seconds = default_delta
    if delta not in (None, ""):
        try:
            seconds = int(delta)  # type: ignore[arg-type]
        except ValueError:
            raise WindowError(_("delta must be a whole number of seconds.")) from None
        if not 60 <= seconds <= MAX_DELTA:
            raise WindowError(_("delta must be between 60 seconds and 180 days."))
    return Window.of(current - seconds, current)


# --- cost.json ---------------------------------------------------------------------------------
def job_energy(session: MetricsSession, job: Any, catalog: TresCatalog, *, now: int) -> tuple[float, str]:
    """kWh of a started job and how they were found (measured, gpu-measured or rated)."""
    scope = job_scope([job], catalog)
    end = job.time_end or now
    hours = max(end - job.time_start, 0) / 3600
    window = Window.of(job.time_start, end)
    try:
        if "power" in settings.JOBSTATS_METRICS and "node" in settings.JOBSTATS_METRICS:
            estimates = node_power(session, scope, window)
            means = []
            for estimate in estimates:
                values = [w for w in estimate.watts if w is not None]
                if values:
                    means.append(sum(values) / len(values))
            if means:
                return sum(means) / 1000 * hours, "measured"
        if scope.gpus and "job" in settings.JOBSTATS_METRICS:
            usage = prometheus_usage(session, job.id_job, job.time_start, end)
            if usage is not None and usage.gpu_power_w is not None:
                seen = usage.gpus_seen or scope.gpus
                from jobstats.domain.gpu_models import gpu_model

                idle = gpu_model(usage.gpu_type or scope.gpu_type).idle_power_w
                gpu_w = usage.gpu_power_w * seen + idle * max(scope.gpus - seen, 0)
                watts = gpu_w + scope.cpus * settings.JOBSTATS_WATTS_PER_CORE
                return watts / 1000 * hours, "gpu-measured"
    except PrometheusUnavailable:
        pass  # the estimate below still answers
    watts = rated_watts(
        cores=scope.cpus, gpus=scope.gpus, gpu_type=scope.gpu_type, watts_per_core=settings.JOBSTATS_WATTS_PER_CORE
    )
    return watts / 1000 * hours, "rated"


def cost_of(job: Any, session: MetricsSession, *, now: float | None = None) -> dict[str, Any]:
    current = _now(now)
    if not job.time_start:
        return {}
    try:
        catalog = tres_catalog()
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    scope = job_scope([job], catalog)
    hours = max((job.time_end or current) - job.time_start, 0) / 3600
    prices = Prices.from_settings()
    kwh, source = job_energy(session, job, catalog, now=current)
    return job_cost(hours=hours, cores=scope.cpus, gpus=scope.gpus, prices=prices, kwh=kwh, energy_source=source)


# --- The jobs API (DataTables server side, and plain JSON) ------------------------------------
# DataTables column names (TT's row keys) to the columns they sort by.
ORDERABLE = {
    "id_job": "id_job",
    "job_name": "job_name",
    "account": "account",
    "partition": "partition",
    "time_submit": "time_submit",
    "time_eligible": "time_eligible",
    "time_start": "time_start",
    "time_end": "time_end",
    "timelimit": "timelimit",
    "get_state_display": "state",
    "state": "state",
    "nodes": "nodes_alloc",
    "job_db_inx": "job_db_inx",
}
API_COLUMNS = (
    "job_db_inx", "id_job", "id_array_job", "id_array_task", "het_job_id", "het_job_offset", "array_task_str",
    "array_max_tasks", "job_name", "account", "partition", "state", "time_submit", "time_eligible", "time_start",
    "time_end", "timelimit", "nodelist", "id_assoc",
)  # fmt: skip

# TT's status labels that differ from ours (its OOM and DEADLINE labels were bugs), for old clients.
TT_STATUS_ALIASES = {
    "complete": "COMPLETED",
    "canceled": "CANCELLED",
    "oom": "OUT_OF_MEMORY",
    "end": "DEADLINE",
    "node fail": "NODE_FAIL",
    "boot fail": "BOOT_FAIL",
}


def resolve_state(text: str) -> str:
    """A state name from a name (``OUT_OF_MEMORY``), its label (``Out of memory``) or TT's label; ValueError if none."""
    value = text.strip()
    names = [name for name, _label in STATE_FILTER_CHOICES]
    if value.upper() in names:
        return value.upper()
    folded = value.casefold()
    for name in names:
        if str(STATE_LABELS[name]).casefold() == folded:
            return name
    if folded in TT_STATUS_ALIASES:
        return TT_STATUS_ALIASES[folded]
    raise ValueError(value)


@dataclass(frozen=True)
class JobQuery:
    """A validated jobs API request."""

    username: str | None = None
    account: str | None = None
    states: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    submitted_after: int | None = None
    submitted_before: int | None = None
    ended_after: int | None = None
    ended_before: int | None = None
    search: str = ""
    order: tuple[str, ...] = DEFAULT_ORDER
    offset: int = 0
    limit: int = 100


def _assoc_ids(cluster: str, **filters: str) -> QuerySet[Any, Any]:
    return cluster_models(cluster).assoc.objects.filter(**filters).exclude(user="").values("id_assoc")


def api_scope(user: Any, cluster: str, query: JobQuery) -> QuerySet[Any]:
    """The jobs the request is about, always inside jobs_visible_to(user).

    ``username`` narrows to one user's jobs (staff: anyone; others: only themselves, another
    name is ignored as TT does); ``account`` narrows to an account, where members see every
    user's jobs (the "accounts" scope) and others only their own.
    """
    scope = "accounts" if query.account and not user.is_staff else "own"
    jobs: QuerySet[Any] = jobs_visible_to(user, cluster, scope=scope)
    if scope == "own" and not user.is_staff and user.is_authenticated:
        jobs = own_jobs(user.get_username(), cluster)  # the same rows as jobs_visible_to(own), through sacct_def
    username = query.username
    if username and not user.is_staff and username != user.get_username():
        username = None
    if username and (user.is_staff or query.account):
        jobs = jobs.filter(id_assoc__in=_assoc_ids(cluster, user=username))
    if query.account:
        jobs = jobs.filter(id_assoc__in=_assoc_ids(cluster, acct=query.account))
    return jobs


def api_filter(jobs: QuerySet[Any], query: JobQuery) -> QuerySet[Any]:
    if query.states:
        condition = Q()
        for name in query.states:
            condition |= state_filter(name)
        jobs = jobs.filter(condition)
    if query.partitions:
        jobs = jobs.filter(partition__in=list(query.partitions))
    if query.submitted_after is not None:
        jobs = jobs.filter(time_submit__gte=query.submitted_after)
    if query.submitted_before is not None:
        jobs = jobs.filter(time_submit__lt=query.submitted_before)
    if query.ended_after is not None:
        jobs = jobs.filter(time_end__gte=query.ended_after)
    if query.ended_before is not None:
        jobs = jobs.filter(time_end__gt=0, time_end__lt=query.ended_before)
    if query.search:
        text = query.search
        condition = Q(job_name__icontains=text) | Q(partition__icontains=text) | Q(account__icontains=text)
        if text.isdigit() and len(text) <= 10:
            condition |= Q(id_job=int(text)) | Q(id_array_job=int(text))
        jobs = jobs.filter(condition)
    return jobs


def _filtered(query: JobQuery) -> bool:
    return bool(
        query.states
        or query.partitions
        or query.search
        or any(
            v is not None
            for v in (query.submitted_after, query.submitted_before, query.ended_after, query.ended_before)
        )
    )


def _iso(epoch: int | None) -> str | None:
    moment = epoch_to_datetime(epoch)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def api_row(job: Any) -> dict[str, Any]:
    state = decode_state(job.state)
    limit = job.timelimit
    return {
        "job_db_inx": job.job_db_inx,
        "id_job": job.id_job,
        "display_id": format_job_id(
            job.id_job,
            job.id_array_job,
            job.id_array_task,
            job.het_job_id,
            job.het_job_offset,
            job.array_task_str,
            job.array_max_tasks,
        ),
        "job_name": job.job_name or "",
        "account": job.account or "",
        "partition": job.partition or "",
        "time_submit": _iso(job.time_submit),
        "time_eligible": _iso(job.time_eligible),
        "time_start": _iso(job.time_start),
        "time_end": _iso(job.time_end),
        "timelimit": None if limit in (None, NO_VAL, 0xFFFFFFFF) else limit,
        "state": state.name,
        "get_state_display": str(state.label),
        "nodes": expand_hostlist(job.nodelist),
        "username": getattr(job, "username", None) or "",
    }


@dataclass(frozen=True)
class JobList:
    total: int
    filtered: int
    rows: list[dict[str, Any]]


def list_jobs(user: Any, cluster: str, query: JobQuery) -> JobList:
    """One page of jobs for the API: two counts (cached a minute; one without filters) and one page query.

    The default order is the sacct_def index's, so the page is read along that index; a deep
    page of the unfiltered list takes its keys from the index alone (see _index_page).
    """
    assoc = cluster_models(cluster).assoc
    order = INDEX_ORDERS.get(query.order, query.order)
    try:
        base = api_scope(user, cluster, query)
        total = cached_count(base)
        jobs = api_filter(base, query)
        filtered = cached_count(jobs) if _filtered(query) else total
        page_jobs = None
        if not _filtered(query) and not user.is_staff and not query.account:
            page_jobs = _index_page(jobs, uid_of(user.get_username(), cluster), total, order, query.offset, query.limit)
        selected = jobs if page_jobs is None else page_jobs
        page = selected.only(*API_COLUMNS).annotate(
            username=Subquery(assoc.objects.filter(id_assoc=OuterRef("id_assoc")).values("user")[:1])
        )
        page = (
            page.order_by(*order)
            if page_jobs is not None
            else page.order_by(*order)[query.offset : query.offset + query.limit]
        )
        rows = [api_row(job) for job in page]
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    return JobList(total, filtered, rows)


def get_job(user: Any, cluster: str, job_db_inx: int) -> dict[str, Any] | None:
    """One job by its record key, under the same scoping as the list (members see their accounts' jobs)."""
    assoc = cluster_models(cluster).assoc
    try:
        job = (
            jobs_visible_to(user, cluster, scope="accounts")
            .filter(job_db_inx=job_db_inx)
            .only(*API_COLUMNS)
            .annotate(username=Subquery(assoc.objects.filter(id_assoc=OuterRef("id_assoc")).values("user")[:1]))
            .first()
        )
    except DatabaseError as exc:
        raise _slurm_db(exc) from exc
    return api_row(job) if job is not None else None
