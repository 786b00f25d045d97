"""Use of a Slurm account: per-user allocation, use and waste; applications; fair share; jobs.

Figures over a window come from the recording rules (domain 4.4) installed with the portal:
a rule is evaluated every ACCOUNTSTATS_RULES_INTERVAL seconds, so Σ over the window × the
interval is core-seconds (GiB-seconds, GPU-seconds). Waste is allocated − used, clamped at 0
per user (domain 4.5). Allocations on the index come from the accounting database, which needs
no exporter. Every label value goes through userportal.promql.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from slurm.decoders import TRES_CPU, decode_state, epoch_to_datetime, parse_tres
from slurm.models import Tres, cluster_models
from slurm.visibility import PortalUser, accounts_of, jobs_of_account
from slurm.window_use import use_in_window
from userportal import promql
from userportal.figures import Figure, constant_trace, figure, layout, no_data, trace
from userportal.prometheus import MetricsSession, Series
from userportal.promql import TAG, by_tag, union
from userportal.windows import DAY, HOUR, Window

GIB = 1024**3
PAGE_SIZE = 50

WINDOWS: tuple[tuple[int, str], ...] = ((DAY, "1 d"), (7 * DAY, "7 d"), (30 * DAY, "30 d"), (90 * DAY, "90 d"))


# --- The accounting database ------------------------------------------------------------------
@dataclass
class AccountUse:
    account: str
    jobs: int = 0
    core_hours: float = 0.0
    gpu_hours: float = 0.0
    users: set[str] = field(default_factory=set)


def accounts_for(user: PortalUser, cluster: str) -> list[str]:
    """The accounts the index lists: the user's own; for staff without one, every account."""
    mine = accounts_of(user.username, cluster)
    if mine or not user.is_staff:
        return mine
    assoc = cluster_models(cluster).assoc
    return sorted(set(assoc.objects.filter(deleted=0, user="").exclude(acct="root").values_list("acct", flat=True)))


def use_by_account(accounts: Iterable[str], cluster: str, *, days: int) -> list[AccountUse]:
    """Jobs, core-hours and GPU-hours of each account over the last ``days``: three queries in all."""
    names = sorted(set(accounts))
    result = {name: AccountUse(name) for name in names}
    if not names:
        return []
    now = int(time.time())
    since = now - days * DAY
    models = cluster_models(cluster)
    catalog = Tres.catalog()
    users = dict(
        models.assoc.objects.filter(acct__in=names).exclude(user="").values_list("id_assoc", "user")
    )  # one query for the id_assoc → user map of every listed account
    rows = (
        models.job.objects.filter(deleted=0, id_assoc__in=list(users), time_start__gt=0, time_start__lt=now)
        .exclude(time_end__gt=0, time_end__lt=since)
        .values_list("id_assoc", "account", "time_start", "time_end", "tres_alloc")
    )
    for id_assoc, account, start, end, tres_alloc in rows.iterator():
        use = result.get(account or "")
        if use is None:
            continue
        seconds = max(min(end or now, now) - max(start, since), 0)
        tres = parse_tres(tres_alloc)
        use.jobs += 1
        use.core_hours += tres.get(TRES_CPU, 0) * seconds / HOUR
        use.gpu_hours += catalog.gpu_count(tres) * seconds / HOUR
        use.users.add(users.get(id_assoc, ""))
    return [result[name] for name in names]


@dataclass(frozen=True)
class JobRow:
    job_id: str
    user: str
    name: str
    state: str
    partition: str
    cpus: int
    gpus: int
    start: datetime | None
    end: datetime | None


def jobs_page(account: str, cluster: str, *, page: int | str = 1) -> Page[JobRow]:
    """One page of the account's jobs, newest first: three queries whatever the page size."""
    models = cluster_models(cluster)
    catalog = Tres.catalog()
    users = dict(models.assoc.objects.filter(acct=account).exclude(user="").values_list("id_assoc", "user"))
    jobs = jobs_of_account(account, cluster).order_by("-time_submit", "-job_db_inx")
    jobs = jobs.only(
        "id_job", "id_assoc", "job_name", "state", "partition", "tres_alloc", "tres_req", "time_start", "time_end",
        "id_array_job", "id_array_task", "het_job_id", "het_job_offset", "array_task_str", "array_max_tasks",
    )  # fmt: skip
    paginator = Paginator(jobs, PAGE_SIZE)
    current: Page[Any] = paginator.get_page(page)
    current.object_list = [
        JobRow(
            job_id=job.display_id,
            user=users.get(job.id_assoc, "?"),
            name=job.job_name,
            state=str(decode_state(job.state).label),
            partition=job.partition,
            cpus=job.tres.get(TRES_CPU, 0),
            gpus=catalog.gpu_count(job.tres),
            start=epoch_to_datetime(job.time_start),
            end=epoch_to_datetime(job.time_end),
        )
        for job in current.object_list
    ]
    return current


# --- Prometheus: the per-user table -----------------------------------------------------------
@dataclass
class UserUse:
    user: str
    values: dict[str, float] = field(default_factory=dict)

    def get(self, key: str) -> float:
        return self.values.get(key, 0.0)

    @property
    def cpu_wasted(self) -> float:
        return max(self.get("cpu_allocated") - self.get("cpu_used"), 0.0)

    @property
    def mem_wasted(self) -> float:
        return max(self.get("mem_allocated") - self.get("mem_used"), 0.0)

    @property
    def gpu_wasted(self) -> float:
        return max(self.get("gpu_allocated") - self.get("gpu_used"), 0.0)


# key: (recording rule, scale to hours of the unit). CPU figures come from the jobs (user_table).
TABLE_RULES: dict[str, tuple[str, float]] = {
    "mem_allocated": ("slurm_job:allocated_memory:sum_user_account", 1.0 / GIB),
    "mem_used": ("slurm_job:rss_memory:sum_user_account", 1.0 / GIB),
    "gpu_allocated": ("slurm_job:allocated_gpu:count_user_account", 1.0),
    "gpu_used": ("slurm_job:used_gpu:sum_user_account", 1.0),
}


def table_query(account: str, window: Window) -> str:
    """One query for the whole table: Σ over the window of each rule, by user, tagged."""
    span = promql.duration(window.seconds)
    return union(
        {
            key: f"sum by (user) (sum_over_time({promql.selector(rule, {'account': account})}[{span}]))"
            for key, (rule, _scale) in TABLE_RULES.items()
        }
    )


def user_table(session: MetricsSession, account: str, window: Window, cluster: str) -> list[UserUse]:
    """Per-user unit-hours (core-hours, GiB-hours, GPU-hours) over ``window``, most allocated first.

    Core-hours allocated and CPU-hours used are the jobs' own (slurm.usage.use_in_window: accounting
    for finished jobs, core counters for running ones), as sacct and seff would add them up; memory
    and GPUs come from the recording rules. Raises PrometheusUnavailable (a DataSourceError) when
    Prometheus does not answer, and a DataSourceError when the accounting database does not.
    """
    interval = settings.ACCOUNTSTATS_RULES_INTERVAL
    rows: dict[str, UserUse] = {}
    period = use_in_window(session, cluster, window.start, window.end, account=account)
    for (user, _account), use in period.rows.items():
        row = rows.setdefault(user, UserUse(user))
        row.values["cpu_allocated"] = row.get("cpu_allocated") + use.core_seconds / HOUR
        row.values["cpu_used"] = row.get("cpu_used") + use.cpu_seconds / HOUR
        row.values["cpu_measured"] = row.values.get("cpu_measured", 0.0) + use.measured_core_seconds / HOUR
    samples = session.query(table_query(account, window), at=window.end)
    for sample in samples:
        key = sample.labels.get(TAG, "")
        if key not in TABLE_RULES:
            continue
        user = sample.labels.get("user", "")
        row = rows.setdefault(user, UserUse(user))
        row.values[key] = sample.value * interval * TABLE_RULES[key][1] / HOUR
    return sorted(rows.values(), key=lambda r: (-r.get("cpu_allocated"), -r.get("gpu_allocated"), r.user))


# --- Prometheus: graphs ------------------------------------------------------------------------
@dataclass(frozen=True)
class GraphSpec:
    name: str
    title: str | Promise
    unit: str
    default_days: int | None = None
    lustre: bool = False

    def available(self) -> bool:
        return not self.lustre or settings.ACCOUNTSTATS_LUSTRE


GRAPHS: dict[str, GraphSpec] = {
    spec.name: spec
    for spec in (
        GraphSpec("cpu_allocated", gettext_lazy("Cores allocated"), "cores"),
        GraphSpec("cpu_used", gettext_lazy("Cores used"), "cores"),
        GraphSpec("cpu_wasted", gettext_lazy("Cores allocated but not used"), "cores"),
        GraphSpec("mem_allocated", gettext_lazy("Memory allocated"), "GiB"),
        GraphSpec("mem_used", gettext_lazy("Memory used (RSS)"), "GiB"),
        GraphSpec("mem_wasted", gettext_lazy("Memory allocated but not used"), "GiB"),
        GraphSpec("gpu_allocated", gettext_lazy("GPUs allocated"), "GPUs"),
        GraphSpec("gpu_used", gettext_lazy("GPUs used (full-GPU equivalents)"), "GPUs"),
        GraphSpec("gpu_wasted", gettext_lazy("GPUs allocated but not used"), "GPUs"),
        GraphSpec("application", gettext_lazy("Cores used per application"), "cores"),
        GraphSpec("cpu_priority", gettext_lazy("Cores and fair share (LevelFS)"), "cores", default_days=90),
        GraphSpec("gpu_priority", gettext_lazy("GPUs and fair share (LevelFS)"), "GPUs", default_days=90),
        GraphSpec("lustre_mdt", gettext_lazy("Filesystem metadata operations"), "ops/s", lustre=True),
        GraphSpec("lustre_ost", gettext_lazy("Filesystem bandwidth"), "MiB/s", lustre=True),
    )
}

_PER_USER: dict[str, tuple[str, str | None, float]] = {
    # name: (rule, rule subtracted for "wasted" or None, scale)
    "cpu_allocated": ("slurm_job:allocated_core:count_user_account", None, 1.0),
    "cpu_used": ("slurm_job:used_core:sum_user_account", None, 1.0),
    "cpu_wasted": ("slurm_job:allocated_core:count_user_account", "slurm_job:used_core:sum_user_account", 1.0),
    "mem_allocated": ("slurm_job:allocated_memory:sum_user_account", None, 1.0 / GIB),
    "mem_used": ("slurm_job:rss_memory:sum_user_account", None, 1.0 / GIB),
    "mem_wasted": ("slurm_job:allocated_memory:sum_user_account", "slurm_job:rss_memory:sum_user_account", 1.0 / GIB),
    "gpu_allocated": ("slurm_job:allocated_gpu:count_user_account", None, 1.0),
    "gpu_used": ("slurm_job:used_gpu:sum_user_account", None, 1.0),
    "gpu_wasted": ("slurm_job:allocated_gpu:count_user_account", "slurm_job:used_gpu:sum_user_account", 1.0),
}


def per_user_expr(name: str, account: str) -> str:
    rule, minus, _scale = _PER_USER[name]
    expr = f"sum by (user) ({promql.selector(rule, {'account': account})})"
    if minus is None:
        return expr
    used = f"sum by (user) ({promql.selector(minus, {'account': account})})"
    # A user with allocations and no usage series at all wasted the whole allocation.
    return f"clamp_min({expr} - ({used} or {expr} * 0), 0)"


def build_graph(session: MetricsSession, name: str, account: str, window: Window) -> Figure:
    spec = GRAPHS[name]
    title = str(spec.title)
    if not spec.available():
        return no_data(title, _("This site does not collect this metric."))
    if name in _PER_USER:
        scale = _PER_USER[name][2]
        series = _range(session, per_user_expr(name, account), window)
        traces = [
            trace(s, s.labels.get("user", "?"), scale=scale, unit=spec.unit, stack=True)
            for s in sorted(series, key=lambda s: s.labels.get("user", ""))
        ]
        return figure(traces, layout(title, spec.unit), unit=spec.unit)
    if name == "application":
        expr = f"sum by (bin) ({promql.selector('slurm_job:process_usage:sum_account', {'account': account})})"
        series = _range(session, expr, window)
        traces = [trace(s, s.labels.get("bin", "?"), unit=spec.unit, stack=True) for s in _largest(series, 12)]
        return figure(traces, layout(title, spec.unit), unit=spec.unit)
    if name in ("cpu_priority", "gpu_priority"):
        return _priority(session, name, account, window)
    return _lustre(session, name, account, window)


def _range(session: MetricsSession, expr: str, window: Window) -> list[Series]:
    return session.query_range(expr, window)


def _largest(series: list[Series], count: int) -> list[Series]:
    return sorted(series, key=lambda s: -sum(v for v in s.values if v == v))[:count]


def _priority(session: MetricsSession, name: str, account: str, window: Window) -> Figure:
    spec = GRAPHS[name]
    kind = "core" if name == "cpu_priority" else "gpu"
    alloc_rule = f"slurm_job:allocated_{kind}:count_user_account"
    used_rule = f"slurm_job:used_{kind}:sum_user_account"
    parts = {
        "allocated": f"sum({promql.selector(alloc_rule, {'account': account})})",
        "used": f"sum({promql.selector(used_rule, {'account': account})})",
        "levelfs": f"max({promql.selector('slurm_account_levelfs', {'account': account})})",
    }
    found = {tag: series[-1] for tag, series in by_tag(_range(session, union(parts), window)).items()}
    names = {"allocated": _("Allocated"), "used": _("Used"), "levelfs": _("LevelFS (right axis)")}
    traces = [trace(found[tag], names[tag], unit=spec.unit) for tag in ("allocated", "used") if tag in found]
    if "levelfs" in found:
        traces.append(trace(found["levelfs"], names["levelfs"], yaxis="y2", dash="dot"))
        xs = found["levelfs"].timestamps
        if xs:
            traces.append(
                constant_trace(xs, 1.0, _("LevelFS 1: used exactly its share"), dash="dash") | {"yaxis": "y2"}
            )
    return figure(
        traces,
        layout(str(spec.title), spec.unit, y2_title=_("LevelFS")),
        unit=spec.unit,
        reason=_("No job or fair-share data for this account in this period."),
    )


def lustre_expr(name: str, account: str) -> str:
    """MDT operations/s, or OST bytes/s read plus written (a user who only reads or only writes included)."""

    def per_user(rule: str) -> str:
        return f"sum by (user, fs) ({promql.selector(rule, {'account': account})})"

    if name == "lustre_mdt":
        return per_user("lustre:metadata:rate3m_user")
    read, write = per_user("lustre:read_bytes:rate3m_user"), per_user("lustre:write_bytes:rate3m_user")
    return f"({read} + {write}) or {read} or {write}"


def _lustre(session: MetricsSession, name: str, account: str, window: Window) -> Figure:
    spec = GRAPHS[name]
    scale = 1.0 if name == "lustre_mdt" else 1.0 / 1024**2
    series = _range(session, lustre_expr(name, account), window)
    traces = [
        trace(s, f"{s.labels.get('user', _('others'))} ({s.labels.get('fs', '?')})", scale=scale, unit=spec.unit)
        for s in series
    ]
    return figure(traces, layout(str(spec.title), spec.unit), unit=spec.unit)
