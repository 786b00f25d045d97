"""Staff views of who uses and who wastes the most (TT's top, domain 4.5), now or over a window.

"Now" reads the recording rules with instant queries (a finished job lingers 5 minutes, the
lookback delta). Over a window, CPU figures are the jobs' own (slurm.usage): core-hours allocated
from accounting, CPU-hours used from accounting's TotalCPU for finished jobs and from the core
counters for running ones, so a flag says what sacct and seff would. Memory and GPU figures over
a window sum the rules' samples: Σ × TOP_RULES_INTERVAL = unit-seconds, shown as GiB-hours and
GPU-hours. Flags follow TT: cores used/allocated < 0.75 red, < 0.9
amber; memory max/allocated < 0.1 red, < 0.5 amber, only when more than a reasonable amount was
allocated; GPUs: none used red, < 0.1 red, < 0.2 amber.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from slurm import exporter
from slurm.decoders import TRES_CPU, TRES_MEM, JobState, decode_state, epoch_to_datetime, parse_tres
from slurm.models import Tres, cluster_models
from slurm.window_use import use_in_window
from userportal import promql
from userportal.errors import PrometheusUnavailable
from userportal.prometheus import MetricsSession
from userportal.promql import TAG, by_tag, union
from userportal.windows import DAY, HOUR

GIB = 1024**3
REASONABLE_GIB_PER_CORE = 4 * 1.1
REASONABLE_GIB_PER_GPU = 128 * 1.1

WINDOWS: dict[str, tuple[int, str | Promise]] = {
    "now": (0, _("now")),
    "1d": (DAY, _("last day")),
    "7d": (7 * DAY, _("last 7 days")),
    "30d": (30 * DAY, _("last 30 days")),
    "90d": (90 * DAY, _("last 90 days")),
}


def window_seconds(name: str | None) -> tuple[str, int]:
    """The window asked for (?window=), or the default (TOP_DEFAULT_DAYS)."""
    if name in WINDOWS:
        return str(name), WINDOWS[str(name)][0]
    default = f"{settings.TOP_DEFAULT_DAYS}d"
    return (default, WINDOWS[default][0]) if default in WINDOWS else ("7d", WINDOWS["7d"][0])


def _aggregate(rule: str, seconds: int, by: str = "user, account") -> str:
    """Now: the rule summed by ``by``; over a window: Σ of its samples (× interval later)."""
    sel = promql.selector(rule)
    if not seconds:
        return f"sum by ({by}) ({sel})"
    return f"sum by ({by}) (sum_over_time({sel}[{promql.duration(seconds)}]))"


def flag(ratio: float | None, red: float, amber: float) -> str:
    if ratio is None:
        return ""
    if ratio < red:
        return "danger"
    if ratio < amber:
        return "warning"
    return ""


@dataclass
class Row:
    user: str
    account: str
    values: dict[str, float] = field(default_factory=dict)
    hours: bool = False  # values are unit-hours over a window, not amounts now

    def get(self, key: str) -> float:
        return self.values.get(key, 0.0)

    @property
    def cpu_ratio(self) -> float | None:
        """CPU used over allocated; over a window, over the allocation of the jobs whose use is known."""
        alloc = self.values.get("cpu_measured", self.get("cpu_alloc"))
        return self.get("cpu_used") / alloc if alloc else None

    @property
    def cpu_unmeasured(self) -> bool:
        """Some running jobs' CPU use is unknown (no counters): they are left out of the ratio."""
        return "cpu_measured" in self.values and self.get("cpu_alloc") - self.get("cpu_measured") > 0.01

    @property
    def cpu_waste(self) -> float:
        return max(self.get("cpu_alloc") - self.get("cpu_used"), 0.0)

    @property
    def mem_ratio(self) -> float | None:
        alloc = self.get("mem_alloc")
        return self.get("mem_used") / alloc if alloc else None

    @property
    def gpu_ratio(self) -> float | None:
        alloc = self.get("gpu_alloc")
        return self.get("gpu_used") / alloc if alloc else None

    @property
    def gpu_waste(self) -> float:
        return max(self.get("gpu_alloc") - self.get("gpu_used"), 0.0)

    @property
    def cpu_flag(self) -> str:
        return flag(self.cpu_ratio, 0.75, 0.9)

    @property
    def mem_flag(self) -> str:
        reasonable = (
            self.get("gpu_alloc") * REASONABLE_GIB_PER_GPU
            if self.get("gpu_alloc")
            else self.get("cpu_alloc") * REASONABLE_GIB_PER_CORE
        )
        if self.get("mem_alloc") <= reasonable:
            return ""
        return flag(self.mem_ratio, 0.1, 0.5)

    @property
    def gpu_flag(self) -> str:
        if self.get("gpu_alloc") and not self.get("gpu_nonidle") and not self.get("gpu_used"):
            return "danger"
        return flag(self.gpu_ratio, 0.1, 0.2)


COMPUTE_RULES = {
    "cpu_alloc": ("slurm_job:allocated_core:count_user_account", 1.0),
    "cpu_used": ("slurm_job:used_core:sum_user_account", 1.0),
    "mem_alloc": ("slurm_job:allocated_memory:sum_user_account", 1.0 / GIB),
    "mem_used": ("slurm_job:max_memory:sum_user_account", 1.0 / GIB),
}
GPU_RULES = {
    **COMPUTE_RULES,
    "gpu_alloc": ("slurm_job:allocated_gpu:count_user_account", 1.0),
    "gpu_used": ("slurm_job:used_gpu:sum_user_account", 1.0),
    "gpu_nonidle": ("slurm_job:non_idle_gpu:sum_user_account", 1.0),
}


def _rows(
    session: MetricsSession,
    rules: dict[str, tuple[str, float]],
    seconds: int,
    cluster: str,
    *,
    now: float | None = None,
) -> list[Row]:
    """Rows from the rules; over a window, the CPU columns from the jobs themselves (slurm.usage)."""
    rows: dict[tuple[str, str], Row] = {}
    if seconds:
        rules = {key: rule for key, rule in rules.items() if key not in ("cpu_alloc", "cpu_used")}
        current = time.time() if now is None else now
        period = use_in_window(session, cluster, current - seconds, current)
        for (user, account), use in period.rows.items():
            row = rows.setdefault((user, account), Row(user, account, hours=True))
            row.values["cpu_alloc"] = use.core_seconds / HOUR
            row.values["cpu_used"] = use.cpu_seconds / HOUR
            row.values["cpu_measured"] = use.measured_core_seconds / HOUR
    samples = session.query(union({key: _aggregate(rule, seconds) for key, (rule, _scale) in rules.items()}), at=now)
    factor = settings.TOP_RULES_INTERVAL / HOUR if seconds else 1.0
    for sample in samples:
        key = sample.labels.get(TAG, "")
        if key not in rules:
            continue
        ident = (sample.labels.get("user", ""), sample.labels.get("account", ""))
        row = rows.setdefault(ident, Row(*ident, hours=bool(seconds)))
        row.values[key] = row.values.get(key, 0.0) + sample.value * rules[key][1] * factor
    return list(rows.values())


def top_compute(session: MetricsSession, seconds: int, cluster: str, *, now: float | None = None) -> list[Row]:
    """The largest CPU users (by cores or core-hours allocated), with use, waste and flags."""
    rows = [r for r in _rows(session, COMPUTE_RULES, seconds, cluster, now=now) if r.get("cpu_alloc")]
    rows.sort(key=lambda r: (-r.get("cpu_alloc"), r.user, r.account))
    return rows[: settings.TOP_LIMIT]


def top_gpu(session: MetricsSession, seconds: int, cluster: str, *, now: float | None = None) -> list[Row]:
    """The largest GPU users; their CPU figures include their CPU-only jobs (as in TT)."""
    rows = [r for r in _rows(session, GPU_RULES, seconds, cluster, now=now) if r.get("gpu_alloc")]
    if seconds:
        # Over a window "GPUs with some use" is GPU-hours with utilisation above 0.
        for row in rows:
            row.values.setdefault("gpu_nonidle", 0.0)
    rows.sort(key=lambda r: (-r.get("gpu_alloc"), r.user, r.account))
    return rows[: settings.TOP_LIMIT]


# --- Large-memory jobs (accounting database, plus Prometheus for running jobs) ------------------
@dataclass
class LargememJob:
    job_id: str
    id_job: int
    user: str
    account: str
    partition: str
    state: str
    running: bool
    cores: int
    mem_alloc_gib: float
    mem_used_gib: float | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def mem_ratio(self) -> float | None:
        if self.mem_used_gib is None or not self.mem_alloc_gib:
            return None
        return self.mem_used_gib / self.mem_alloc_gib

    @property
    def mem_flag(self) -> str:
        if self.mem_alloc_gib <= self.cores * REASONABLE_GIB_PER_CORE:
            return ""
        return flag(self.mem_ratio, 0.1, 0.5)


def largemem_jobs(
    session: MetricsSession, cluster: str, seconds: int, *, now: float | None = None
) -> tuple[list[LargememJob], bool]:
    """Jobs in large-memory partitions: running for over an hour, plus (over a window) those ended in it.

    Memory used: the steps' peak RSS for ended jobs (accounting database), the exporter's peak for
    running ones. Four queries and at most one Prometheus query, whatever the number of jobs.
    Returns (jobs, whether the running jobs' use is missing because Prometheus is down).
    """
    now = now or time.time()
    models = cluster_models(cluster)
    partitions = Q()
    for part in settings.TOP_LARGEMEM_PARTITIONS:
        partitions |= Q(partition__contains=part)
    running = Q(state=int(JobState.RUNNING), time_start__gt=0, time_start__lt=int(now) - HOUR)
    which = running | Q(time_end__gte=int(now) - seconds, time_start__gt=0) if seconds else running
    jobs = list(
        models.job.objects.filter(deleted=0)
        .filter(partitions)
        .filter(which)
        .order_by("-time_start")
        .only("job_db_inx", "id_job", "id_assoc", "account", "partition", "state", "tres_alloc", "time_start", "time_end",
              "id_array_job", "id_array_task", "het_job_id", "het_job_offset", "array_task_str", "array_max_tasks")[
            : settings.TOP_LIMIT
        ]
    )  # fmt: skip
    users = dict(models.assoc.objects.filter(id_assoc__in={j.id_assoc for j in jobs}).values_list("id_assoc", "user"))
    peaks: dict[int, int] = {}
    for inx, usage in models.step.objects.filter(job_db_inx__in=[j.job_db_inx for j in jobs]).values_list(
        "job_db_inx", "tres_usage_in_max"
    ):
        rss = parse_tres(usage).get(TRES_MEM)
        if rss is not None:  # sacct's MaxRSS: the largest step's (slurm.usage.step_totals)
            peaks[inx] = max(peaks.get(inx, 0), rss)
    result = []
    for job in jobs:
        tres = parse_tres(job.tres_alloc)
        state = decode_state(job.state)
        is_running = state.base == JobState.RUNNING
        peak = peaks.get(job.job_db_inx)
        result.append(
            LargememJob(
                job_id=job.display_id, id_job=job.id_job, user=users.get(job.id_assoc, "?"), account=job.account or "",
                partition=job.partition, state=str(state.label), running=is_running, cores=tres.get(TRES_CPU, 0),
                mem_alloc_gib=tres.get(2, 0) / 1024,  # TRES mem is in MB
                mem_used_gib=None if is_running or peak is None else peak / GIB,
                start=epoch_to_datetime(job.time_start), end=epoch_to_datetime(job.time_end),
            )
        )  # fmt: skip
    live = [j for j in result if j.running]
    missing = False
    if live:
        life = int(now - min(j.start.timestamp() for j in live if j.start)) + 60 if any(j.start for j in live) else HOUR
        try:
            found = by_tag(session.query(union(exporter.memory_peak([j.id_job for j in live], life)), at=now))
        except PrometheusUnavailable:
            missing = True
        else:
            by_job = {tag: {s.labels.get("slurmjobid", ""): s.value for s in found.get(tag, [])} for tag in found}
            for item in live:
                value = exporter.peak_of(by_job.get("mem_max", {}).get(str(item.id_job)),
                                         by_job.get("mem_usage", {}).get(str(item.id_job)))  # fmt: skip
                if value is not None:
                    item.mem_used_gib = value / GIB
    return result, missing


# --- GPUs allocated and idle -----------------------------------------------------------------
@dataclass
class IdleGpuJob:
    job_id: str
    user: str
    account: str
    gpus: int
    reason: str  # "zero": 0 % all along; "no-process": no series at all; "not-measured": CPU series, no GPU series


@dataclass
class IdleGpus:
    idle: list[IdleGpuJob]  # GPUs at 0 %, or held by a job with no process
    unmeasured: list[IdleGpuJob]  # running jobs the exporter sees whose GPUs it cannot read: not idle, unknown


def idle_gpu_jobs(session: MetricsSession, cluster: str, seconds: int) -> IdleGpus:
    """GPU jobs whose GPUs stayed at 0 % (over the window, or now), and running GPU jobs without GPU series.

    A running GPU job of the accounting database without utilisation series is either a job the
    exporter skips because its cgroup has no process (domain 4.2: GPUs held by nothing, "no
    process"), or a job it sees (core counters, processes) on a node where NVML/DCGM cannot read
    the GPUs: "not measured", which says nothing about its GPUs' use.
    """
    sel = promql.selector("slurm_job_utilization_gpu")
    inner = f"max_over_time({sel}[{promql.duration(seconds)}])" if seconds else sel
    parts = {
        "max": f"max by (slurmjobid, user, account) ({inner})",
        "gpus": f"count by (slurmjobid, user, account) ({inner})",
        "present": f"count by (slurmjobid) ({sel})",
        "seen": f"count by (slurmjobid) ({promql.selector(exporter.CORE_COUNTER)})",
    }
    samples = session.query(union(parts))
    peak: dict[str, tuple[float, str, str]] = {}
    count: dict[str, int] = {}
    present: set[str] = set()
    seen: set[str] = set()
    for sample in samples:
        tag = sample.labels.get(TAG, "")
        job = sample.labels.get("slurmjobid", "")
        if tag == "max":
            peak[job] = (sample.value, sample.labels.get("user", ""), sample.labels.get("account", ""))
        elif tag == "gpus":
            count[job] = int(sample.value)
        elif tag == "present":
            present.add(job)
        elif tag == "seen":
            seen.add(job)
    idle = [
        IdleGpuJob(job, user, account, count.get(job, 0), "zero")
        for job, (value, user, account) in sorted(peak.items(), key=lambda item: int(item[0] or 0))
        if value <= 0
    ]
    unseen = _without_gpu_series(cluster, present, seen)
    idle.extend(j for j in unseen if j.reason == "no-process")
    return IdleGpus(idle[: settings.TOP_LIMIT], [j for j in unseen if j.reason == "not-measured"][: settings.TOP_LIMIT])


def _without_gpu_series(cluster: str, present: Iterable[str], seen: set[str]) -> list[IdleGpuJob]:
    models = cluster_models(cluster)
    catalog = Tres.catalog()
    with_gpu_series = set(present)
    running = list(
        models.job.objects.filter(deleted=0, state=int(JobState.RUNNING), time_start__gt=0)
        .exclude(tres_alloc="")
        .only("id_job", "id_assoc", "account", "tres_alloc", "id_array_job", "id_array_task", "het_job_id",
              "het_job_offset", "array_task_str", "array_max_tasks")
    )  # fmt: skip
    gpu_jobs = [
        j for j in running if catalog.gpu_count(parse_tres(j.tres_alloc)) and str(j.id_job) not in with_gpu_series
    ]
    users = dict(
        models.assoc.objects.filter(id_assoc__in={j.id_assoc for j in gpu_jobs}).values_list("id_assoc", "user")
    )
    return [
        IdleGpuJob(j.display_id, users.get(j.id_assoc, "?"), j.account or "", catalog.gpu_count(parse_tres(j.tres_alloc)),
                   "not-measured" if str(j.id_job) in seen else "no-process")
        for j in gpu_jobs
    ]  # fmt: skip


# --- Filesystems (lustre_exporter_slurm rules) ----------------------------------------------------
@dataclass
class FsRow:
    fs: str
    user: str
    value: float


def top_filesystem(session: MetricsSession, seconds: int) -> dict[str, list[FsRow]]:
    """Per filesystem, the top 20 users by metadata ops/s and by bandwidth (MiB/s), root excluded."""
    span = promql.duration(seconds or DAY)
    parts = {
        "mdt": f"sum by (fs, user) (avg_over_time({promql.selector('lustre:metadata:rate3m_user')}[{span}]))",
        "ost": (
            f"sum by (fs, user) (avg_over_time({promql.selector('lustre:read_bytes:rate3m_user')}[{span}])"
            f" + avg_over_time({promql.selector('lustre:write_bytes:rate3m_user')}[{span}])) / 1048576"
        ),
    }
    result: dict[str, list[FsRow]] = {"mdt": [], "ost": []}
    for sample in session.query(union(parts)):
        tag = sample.labels.get(TAG, "")
        user = sample.labels.get("user") or str(_("others"))
        if tag in result and user != "root":
            result[tag].append(FsRow(sample.labels.get("fs", "?"), user, sample.value))
    for rows in result.values():
        rows.sort(key=lambda r: (r.fs, -r.value))
    return {key: _top_per_fs(rows, 20) for key, rows in result.items()}


def _top_per_fs(rows: list[FsRow], count: int) -> list[FsRow]:
    kept: dict[str, int] = {}
    out = []
    for row in rows:
        kept[row.fs] = kept.get(row.fs, 0) + 1
        if kept[row.fs] <= count:
            out.append(row)
    return out
