"""One job's page: its record, resources, steps, node events, dependencies, usage, efficiency and advice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError
from django.db.models import Q

from jobstats import waiting
from jobstats.dependencies import LinkedJob, linked_jobs
from jobstats.domain import advice as advice_rules
from jobstats.domain import pending as pending_domain
from jobstats.domain.cost import Prices
from jobstats.domain.efficiency import Efficiency, JobUsage, summarise
from jobstats.domain.submitline import (
    Dependencies,
    SubmitOptions,
    dependencies_of,
    parse_script_directives,
    parse_submit_line,
)
from jobstats.graphs.job import job_graphs_for
from jobstats.jobusage import UsageAsked, job_usage, usage_asked
from jobstats.services import LIST_COLUMNS, MAX_ARRAY_TASKS, JobSummary, epoch_now, job_summary, read_prepared
from slurm.decoders import (
    StateInfo,
    TresCatalog,
    decode_exit_code,
    decode_state,
    format_duration,
    format_timelimit,
    job_memory_mb,
    parse_tres,
)
from slurm.hostlists import compress_hostlist
from slurm.models import Qos, Tres, cluster_models
from slurm.visibility import jobs_of_user_by_uid
from userportal.errors import DataSourceError, SlurmDatabaseUnavailable
from userportal.prometheus import MetricsSession

MAX_STEPS_SHOWN = 200
MAX_STEPS_READ = 5000
MAX_EVENTS = 100
MAX_EVENT_NODES = 500
HOUR = 3600


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
class Progress:
    elapsed: str
    limit: str
    percent: int | None  # None: no limit

    @property
    def bar(self) -> int:
        return min(self.percent or 0, 100)


@dataclass
class JobPage:
    job: Any
    row: JobSummary
    others: list[JobSummary]
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
    array_tasks: list[JobSummary]
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


def resources_of(tres: dict[int, int], catalog: TresCatalog, job: Any) -> Resources:
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


def _events(cluster: str, nodes: list[str], start: int, end: int) -> list[EventRow]:
    if not nodes or not start:
        return []
    event = cluster_models(cluster).event
    names = nodes[:MAX_EVENT_NODES]

    def build(before: int, after: int, *names: str) -> Any:
        return (
            event.objects.filter(node_name__in=names, time_start__lte=before)
            .filter(Q(time_end=0) | Q(time_end__gte=after))
            .only("node_name", "time_start", "time_end", "reason")
            .order_by("time_start")[:MAX_EVENTS]
        )

    rows = read_prepared(("events", cluster, len(names)), build, end + HOUR, start - HOUR, *names)
    return [EventRow(r.node_name, r.start_time, r.end_time, r.reason) for r in rows]


def _steps(job: Any, catalog: TresCatalog) -> tuple[list[StepRow], int, list[Any]]:
    step = type(job).cluster_classes.step  # what job.steps() reads, its job a value of the statement
    rows = read_prepared(("steps", step), lambda job_db_inx: _steps_of(step, job_db_inx), job.job_db_inx)
    shown = []
    for step in rows[:MAX_STEPS_SHOWN]:
        end = step.time_end or epoch_now()
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


def _steps_of(step: Any, job_db_inx: int) -> Any:
    """The steps ``_steps`` reads of the job ``job_db_inx`` (``step``: its cluster's step model)."""
    return (
        step.objects.filter(job_db_inx=job_db_inx)
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
    if not qos_id:
        return None
    rows = read_prepared("qos", lambda qos: Qos.objects.filter(id=qos).order_by("pk")[:1], qos_id)
    return rows[0] if rows else None


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


def job_page(
    username: str, cluster: str, records: list[Any], session: MetricsSession, *, now: float | None = None
) -> JobPage:
    """Everything the job page shows about the most recent of ``records`` (same id_job, newest first)."""
    current = epoch_now(now)
    job = records[0]
    with usage_asked(session, job, now=current) as asked:  # Prometheus answers while Slurm is read
        return _job_page(username, cluster, records, session, current, asked)


def _job_page(
    username: str, cluster: str, records: list[Any], session: MetricsSession, current: int, asked: UsageAsked | None
) -> JobPage:
    job = records[0]
    try:
        catalog = Tres.catalog()
        qos_row = _qos_row(job.id_qos)
        steps, more_steps, all_steps = _steps(job, catalog)
        nodes = job.nodes
        events = _events(cluster, nodes, job.time_start, job.time_end or current)
        options = parse_submit_line(job.submit_line)
        script, script_notice = _script(cluster, job)
        if script:
            options = options.merged_over(parse_script_directives(script))
        deps = dependencies_of(options)
        linked = linked_jobs(job, username, cluster, deps, now=current)
        array_tasks: list[Any] = []
        if job.id_array_job:
            array_tasks = list(
                jobs_of_user_by_uid(username, cluster)
                .filter(id_array_job=job.id_array_job)
                .only(*LIST_COLUMNS)
                .order_by("id_array_task", "-time_submit")[:MAX_ARRAY_TASKS]
            )
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    row = job_summary(job, catalog, now=current)
    requested = resources_of(parse_tres(job.tres_req), catalog, job)
    allocated = resources_of(parse_tres(job.tres_alloc), catalog, job) if job.tres_alloc else None
    resources = allocated or requested
    usage, metrics_notice = job_usage(session, job, all_steps, now=current, asked=asked)
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
        dependents=[link.id_job for link in linked.dependents],
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
        pending = waiting.pending_info(job, cluster, qos_row, catalog, deps, now=current)
    task_rows = [job_summary(task, catalog, now=current) for task in array_tasks]
    graphs = job_graphs_for(resources.gpus, len(nodes)) if job.time_start else []
    return JobPage(
        job=job,
        row=row,
        others=[job_summary(other, catalog, now=current) for other in records[1:]],
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
        dependencies=linked.dependencies,
        dependency_mode="any" if deps.any_of else "all",
        singleton=deps.singleton,
        dependents=linked.dependents,
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
