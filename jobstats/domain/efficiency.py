"""What a job used against what it asked for ("seff done better"), from accounting and from the nodes.

Pure: the Prometheus query is built and its answer read here; jobstats.jobusage sends it.

The figures are the ones sacct and seff give, computed in one place (slurm.usage, slurm.exporter):

* a **finished** job's CPU time and memory peak come from Slurm's accounting: TotalCPU (the
  steps' user + system time) and MaxRSS (the largest step's); the exporter adds what accounting
  does not have (GPUs, threads, programs) and the memory peak when no step was sampled;
* a **running** job's CPU time is its core counters' growth since it started (up to their last
  sample), never an average of rate() points; its memory peak is ``slurm_job_memory_max``, or the
  highest ``slurm_job_memory_usage`` where the exporter sends no peak (cgroup v2 before 6.8);
* GPUs the exporter cannot read (a job it sees, with no GPU series) are "not measured": no GPU
  figure, a note instead, never 0 %.

Every result says where its figures came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from slurm import exporter
from slurm.decoders import format_duration
from slurm.usage import cpu_efficiency, step_totals
from userportal.prometheus import Sample, finite
from userportal.promql import duration, job_selector, union
from userportal.windows import step_for

SOURCE_PROMETHEUS = "prometheus"
SOURCE_ACCOUNTING = "accounting"
MEM_MAXRSS, MEM_PEAK, MEM_USAGE = "maxrss", "memory_max", "memory_usage"


@dataclass(frozen=True)
class JobUsage:
    source: str  # where the CPU time comes from: accounting (TotalCPU) or prometheus (the core counters)
    cpu_seconds: float | None = None
    cores_used: float | None = None  # mean cores busy over the run
    cpu_elapsed: float | None = None  # the run time cpu_seconds covers (a running job: to the counters' last sample)
    mem_max_bytes: float | None = None
    mem_source: str = ""  # maxrss (accounting), memory_max (the cgroup's peak), memory_usage (highest sampled)
    cores_seen: int | None = None  # core series the exporter sent: it saw the job (it has processes)
    gpus_seen: int | None = None  # GPUs with series (idle jobs' GPUs are invisible, domain 4.2)
    gpu_util: float | None = None  # mean utilisation per GPU, percent
    gpu_mem_fraction: float | None = None  # peak memory of the fullest GPU, 0-1
    gpu_power_w: float | None = None  # mean power per GPU
    gpu_type: str | None = None
    threads_running: float | None = None
    programs: tuple[tuple[str, float], ...] = field(default=())  # (executable, mean cores)

    @property
    def label(self) -> str:
        if self.source == SOURCE_PROMETHEUS:
            return _("measured on the nodes (Prometheus)")
        if self.gpu_util is not None or self.threads_running is not None:
            return _(
                "from Slurm's accounting for CPU time and memory (as sacct and seff), and from the nodes for the rest"
            )
        return _("from Slurm's accounting (the job's steps)")

    def gpu_state(self, allocated: int) -> str:
        """slurm.exporter.gpu_state for ``allocated`` GPUs: measured, not-measured, not-seen (or none)."""
        return exporter.gpu_state(allocated, self.gpus_seen, self.cores_seen)


def usage_span(start: float, end: float) -> int:
    """The seconds a job's usage query covers (at least a minute)."""
    return max(int(end - start), 60)


def usage_query(job_id: int, span: int) -> str:
    """One PromQL query for a job's usage over its last ``span`` seconds (slurm-job-exporter's series, tagged)."""
    step = step_for(span)
    window = duration(span)
    ids = [job_id]

    def sel(metric: str, **labels: str) -> str:
        return job_selector(metric, ids, **labels)

    def over(expr: str, how: str) -> str:
        return f"{how}_over_time(({expr})[{span}s:{step}s])"

    util = sel("slurm_job_utilization_gpu")
    gpu_used, gpu_total = sel("slurm_job_memory_usage_gpu"), sel("slurm_job_memory_total_gpu")
    threads = sel("slurm_job_threads_count", state="running")
    parts = {
        "u_cpu": exporter.cpu_seconds(ids, span),
        "u_cpu_at": exporter.last_sample(ids),
        **{f"u_{tag}": expr for tag, expr in exporter.memory_peak(ids, span).items()},
        "u_seen": exporter.seen(ids, span),
        "u_gpus": exporter.gpus_measured(ids, span),
        "u_gpu_util": f"avg(avg_over_time({util}[{window}]))",
        "u_gpu_type": f"count by (gpu_type) (max_over_time({util}[{window}]))",
        "u_gpu_mem": over(f"max({gpu_used} / {gpu_total})", "max"),
        "u_gpu_power": f"avg(avg_over_time({sel('slurm_job_power_gpu')}[{window}])) / 1000",
        "u_threads": over(f"sum({threads})", "avg"),
        # CPU seconds per executable (a counter from the process's start) over the run: mean cores
        "u_programs": f"topk(10, sum by (exe) (last_over_time({sel('slurm_job_process_usage_total')}[{window}]))) / {span}",
    }
    return union(parts)


def usage_from_answer(found: Mapping[str, Sequence[Sample]], span: int, start: float | None = None) -> JobUsage | None:
    """The JobUsage in usage_query()'s answer (split by tag); None when the exporter has no series of the job."""
    if not found:
        return None

    def one(tag: str) -> float | None:
        values = [finite(sample.value) for sample in found.get(tag, [])]
        present = [v for v in values if v is not None]
        return max(present) if present else None

    types = sorted(found.get("u_gpu_type", []), key=lambda s: -s.value)
    gpus, seen = one("u_gpus"), one("u_seen")
    cpu, cpu_at = one("u_cpu"), one("u_cpu_at")
    covered = float(cpu_at - start) if cpu_at is not None and start is not None and cpu_at > start else float(span)
    mem_max, mem_usage = one("u_mem_max"), one("u_mem_usage")
    programs = tuple(
        sorted(
            (
                ((s.labels.get("exe", "") or "?").rsplit("/", 1)[-1], float(v))
                for s in found.get("u_programs", [])
                if (v := finite(s.value)) is not None and v > 0.01
            ),
            key=lambda item: -item[1],
        )
    )
    return JobUsage(
        source=SOURCE_PROMETHEUS,
        cpu_seconds=cpu,
        cores_used=cpu / covered if cpu is not None and covered > 0 else None,
        cpu_elapsed=covered if cpu is not None else None,
        mem_max_bytes=exporter.peak_of(mem_max, mem_usage),
        mem_source=MEM_PEAK if mem_max is not None else (MEM_USAGE if mem_usage is not None else ""),
        cores_seen=int(seen) if seen is not None else None,
        gpus_seen=int(gpus) if gpus is not None else None,
        gpu_util=one("u_gpu_util"),
        gpu_mem_fraction=one("u_gpu_mem"),
        gpu_power_w=one("u_gpu_power"),
        gpu_type=types[0].labels.get("gpu_type") if types else None,
        threads_running=one("u_threads"),
        programs=programs,
    )


def accounting_usage(steps: Iterable[Any], elapsed: float) -> JobUsage | None:
    """TotalCPU and MaxRSS over the job's steps (sacct's and seff's figures); None without steps."""
    totals = step_totals(steps)
    if totals is None:
        return None
    return JobUsage(
        source=SOURCE_ACCOUNTING,
        cpu_seconds=totals.cpu_seconds,
        cores_used=totals.cpu_seconds / elapsed if elapsed > 0 else None,
        cpu_elapsed=elapsed,
        mem_max_bytes=float(totals.max_rss_bytes) if totals.max_rss_bytes is not None else None,
        mem_source=MEM_MAXRSS if totals.max_rss_bytes is not None else "",
    )


def combined_usage(accounting: JobUsage | None, measured: JobUsage | None, *, finished: bool) -> JobUsage | None:
    """The job page's figures: a finished job's CPU time and MaxRSS from accounting, the rest from the nodes.

    A running job's steps have no CPU time in accounting until they end, so its figures are the
    exporter's (accounting's when the exporter has none of the job).
    """
    if not finished or accounting is None:
        return measured or accounting
    if measured is None:
        return accounting
    keep_memory = accounting.mem_max_bytes is not None
    return replace(
        measured,
        source=SOURCE_ACCOUNTING,
        cpu_seconds=accounting.cpu_seconds,
        cores_used=accounting.cores_used,
        cpu_elapsed=accounting.cpu_elapsed,
        mem_max_bytes=accounting.mem_max_bytes if keep_memory else measured.mem_max_bytes,
        mem_source=accounting.mem_source if keep_memory else measured.mem_source,
    )


# --- The summary ------------------------------------------------------------------------------
GOOD, FAIR, POOR, WARN = "good", "fair", "poor", "warning"


@dataclass(frozen=True)
class Measure:
    kind: str  # cpu, memory, gpu, time
    fraction: float  # used / requested
    used: str
    requested: str
    verdict: str  # good, fair, poor, warning
    sentence: str

    @property
    def percent(self) -> int:
        return round(min(self.fraction, 9.99) * 100)

    @property
    def bar_percent(self) -> int:
        return max(0, min(self.percent, 100))


@dataclass(frozen=True)
class Waste:
    core_hours: float = 0.0
    gpu_hours: float = 0.0
    memory_gib_hours: float = 0.0
    cost: float | None = None


@dataclass(frozen=True)
class Efficiency:
    source: str
    source_label: str
    running: bool
    measures: tuple[Measure, ...]
    waste: Waste
    currency: str = ""
    notes: tuple[str, ...] = ()  # figures that are unknown, and why (never shown as 0)

    def get(self, kind: str) -> Measure | None:
        return next((m for m in self.measures if m.kind == kind), None)


def _gib(value_bytes: float) -> str:
    return f"{value_bytes / 1024**3:.1f} GiB"


def _duration(seconds: float) -> str:
    return format_duration(seconds)


def summarise(
    usage: JobUsage,
    *,
    cores: int,
    gpus: int,
    memory_mb: int | None,
    elapsed: float,
    timelimit_minutes: int | None,
    state: str,
    running: bool,
    hardware_core_hour: float | None,
    hardware_gpu_hour: float | None,
    currency: str,
) -> Efficiency:
    """CPU, memory, GPU and time efficiency with a plain-language verdict, and what the unused share cost."""
    measures: list[Measure] = []
    hours = elapsed / 3600
    cpu_fraction = cpu_efficiency(usage.cpu_seconds, cores, usage.cpu_elapsed or elapsed)
    if usage.cpu_seconds is not None and cpu_fraction is not None:
        if cpu_fraction >= 0.75:
            verdict, sentence = GOOD, _("The job kept its cores busy.")
        elif cores == 1:
            verdict, sentence = (
                FAIR if cpu_fraction >= 0.5 else POOR,
                _("The core was idle part of the time, perhaps waiting for files or the network."),
            )
        elif cpu_fraction >= 0.5:
            verdict, sentence = (
                FAIR,
                _("A quarter to half of the cores' time went unused; fewer cores may run it as fast."),
            )
        elif cores > 1 and usage.cores_used is not None and usage.cores_used < 1.1:
            verdict, sentence = (
                POOR,
                _(
                    "The job used about one core of the %(cores)d it asked for: it looks serial. Ask for one core, or make it run in parallel."
                )
                % {"cores": cores},
            )
        else:
            verdict, sentence = (
                POOR,
                _("Most of the cores you asked for sat idle. Ask for fewer, or check that your program uses them all."),
            )
        measures.append(
            Measure(
                "cpu",
                cpu_fraction,
                _("%(used)s of CPU time") % {"used": _duration(usage.cpu_seconds)},
                ngettext("%(cores)d core × %(elapsed)s", "%(cores)d cores × %(elapsed)s", cores)
                % {"cores": cores, "elapsed": _duration(usage.cpu_elapsed or elapsed)},
                verdict,
                sentence,
            )
        )
    mem_fraction = None
    if usage.mem_max_bytes is not None and memory_mb:
        mem_fraction = usage.mem_max_bytes / (memory_mb * 1024 * 1024)
        if state == "OUT_OF_MEMORY" or mem_fraction > 0.95:
            verdict, sentence = WARN, _("The job used (nearly) all its memory: ask for more, or it may be killed.")
        elif mem_fraction >= 0.5:
            verdict, sentence = GOOD, _("The memory request fits what the job used.")
        elif mem_fraction >= 0.1:
            verdict, sentence = (
                FAIR,
                _("The job used less than half the memory it asked for; a smaller request leaves room for others."),
            )
        else:
            verdict, sentence = POOR, _("The job used less than a tenth of its memory: ask for much less next time.")
        measures.append(
            Measure("memory", mem_fraction, _gib(usage.mem_max_bytes), _gib(memory_mb * 1024 * 1024), verdict, sentence)
        )
    gpu_fraction = None
    notes: list[str] = []
    if usage.gpu_state(gpus) == "not-measured":
        notes.append(
            _(
                "GPUs not measured: the exporter sees this job's processes, CPU and memory, but cannot read its GPUs "
                "(no NVML or DCGM on the node). Their use is unknown, not zero."
            )
        )
    elif gpus and usage.gpu_util is not None:
        seen = usage.gpus_seen or gpus
        # GPUs the exporter never saw were idle (it skips jobs without processes on them).
        gpu_fraction = usage.gpu_util / 100 * min(seen, gpus) / gpus
        if gpu_fraction >= 0.5:
            verdict, sentence = GOOD, _("The GPUs were kept busy.")
        elif gpu_fraction >= 0.2:
            verdict, sentence = (
                FAIR,
                _("The GPUs were busy less than half the time; check for data loading or CPU bottlenecks."),
            )
        else:
            verdict, sentence = (
                POOR,
                _(
                    "The GPUs were mostly idle. A GPU hour costs far more than a core hour: check that your code uses them."
                ),
            )
        measures.append(
            Measure(
                "gpu",
                gpu_fraction,
                _("%(util).0f %% average utilisation per GPU") % {"util": usage.gpu_util},
                ngettext("%(gpus)d GPU", "%(gpus)d GPUs", gpus) % {"gpus": gpus},
                verdict,
                sentence,
            )
        )
    if timelimit_minutes and elapsed > 0:
        time_fraction = elapsed / (timelimit_minutes * 60)
        if state == "TIMEOUT":
            verdict, sentence = (
                WARN,
                _("The job reached its time limit and was stopped. Ask for more time, or save checkpoints."),
            )
        elif running:
            verdict, sentence = GOOD, _("The job is still running.")
        elif time_fraction < 0.1 and timelimit_minutes > 60:
            verdict, sentence = (
                FAIR,
                _("The job ended long before its limit; a closer limit lets the scheduler start it sooner."),
            )
        else:
            verdict, sentence = GOOD, _("The time limit fits the run time.")
        measures.append(
            Measure(
                "time",
                time_fraction,
                _duration(elapsed),
                _duration(timelimit_minutes * 60),
                verdict,
                sentence,
            )
        )
    core_hours = cores * hours * (1 - min(cpu_fraction, 1.0)) if cpu_fraction is not None else 0.0
    gpu_hours = gpus * hours * (1 - min(gpu_fraction, 1.0)) if gpu_fraction is not None else 0.0
    mem_gib_hours = (
        max(memory_mb / 1024 - usage.mem_max_bytes / 1024**3, 0.0) * hours
        if memory_mb and usage.mem_max_bytes is not None
        else 0.0
    )
    # Less than a few minutes of a core is noise, not waste worth a sentence.
    core_hours = core_hours if core_hours >= 0.05 else 0.0
    gpu_hours = gpu_hours if gpu_hours >= 0.01 else 0.0
    mem_gib_hours = mem_gib_hours if mem_gib_hours >= 0.5 else 0.0
    cost: float | None = None
    if gpus and gpu_hours and hardware_gpu_hour is not None:
        cost = gpu_hours * hardware_gpu_hour  # TT charges GPU jobs by the GPU only
    elif not gpus and core_hours and hardware_core_hour is not None:
        cost = core_hours * hardware_core_hour
    return Efficiency(
        source=usage.source,
        source_label=usage.label,
        running=running,
        measures=tuple(measures),
        waste=Waste(core_hours if not gpus else 0.0, gpu_hours, mem_gib_hours, cost),
        currency=currency,
        notes=tuple(notes),
    )
