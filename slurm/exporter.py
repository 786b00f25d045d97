"""What slurm-job-exporter's series say about jobs: the one place its counters become a job's figures.

The exporter (guilbaults/slurm-job-exporter, shared/reference/domain.md 4.2) counts each job's
CPU time in ``slurm_job_core_usage_total``: nanoseconds per allocated core, from the moment the
job's cgroup was made. A job's CPU time is therefore the counters' *increase over its life*, never
an average of ``rate()`` points (the first points of a rate window ramp up from nothing, and a
window wider than a short job dilutes it). Its memory peak is ``slurm_job_memory_max``, which is
absent on cgroup v2 before kernel 6.8: then the highest ``slurm_job_memory_usage`` sampled. GPU
series exist only when the exporter can read the GPUs (NVML or DCGM): a job seen by the exporter
(it has core counters) without GPU series has GPUs that are *not measured*, not idle.

Finished jobs take their CPU time and MaxRSS from Slurm's accounting (slurm.usage); these
expressions serve running jobs, and the GPU figures of every job.
"""

from __future__ import annotations

from collections.abc import Iterable

from userportal.promql import duration, job_selector

CORE_COUNTER = "slurm_job_core_usage_total"
MEMORY_MAX = "slurm_job_memory_max"
MEMORY_USAGE = "slurm_job_memory_usage"
GPU_UTILISATION = "slurm_job_utilization_gpu"


def cpu_seconds(job_ids: Iterable[int], seconds: int, *, by: str = "slurmjobid") -> str:
    """CPU seconds each job used in the ``seconds`` before the evaluation time, from its core counters.

    A counter that already existed ``seconds`` ago gives its last value minus the value it had
    then; one that did not (the job started inside the period) gives its last value, since it
    counted from zero at the job's start; a counter that went back (a requeued job's new cgroup)
    gives ``increase()`` over the period instead.
    """
    sel = job_selector(CORE_COUNTER, job_ids)
    span = duration(seconds)
    last = f"last_over_time({sel}[{span}])"
    grown = f"(({last} - {sel} offset {span}) or {last})"
    per_core = f"(({grown} unless (resets({sel}[{span}]) > 0)) or increase({sel}[{span}]))"
    return f"sum by ({by}) ({per_core}) / 1e9"


def last_sample(job_ids: Iterable[int]) -> str:
    """The time of each job's latest core-counter sample (what cpu_seconds counted up to), within the lookback."""
    return f"max by (slurmjobid) (timestamp({job_selector(CORE_COUNTER, job_ids)}))"


def memory_peak(job_ids: Iterable[int], seconds: int) -> dict[str, str]:
    """Each job's memory peak in bytes over the period, summed over its nodes, as two tagged parts.

    ``mem_max``: the cgroup's own peak (``slurm_job_memory_max``); ``mem_usage``: the highest usage
    sampled, the fallback where the exporter sends no peak (cgroup v2 before kernel 6.8).
    """
    span = duration(seconds)
    return {
        "mem_max": f"sum by (slurmjobid) (max_over_time({job_selector(MEMORY_MAX, job_ids)}[{span}]))",
        "mem_usage": f"sum by (slurmjobid) (max_over_time({job_selector(MEMORY_USAGE, job_ids)}[{span}]))",
    }


def peak_of(mem_max: float | None, mem_usage: float | None) -> float | None:
    """The memory peak: the cgroup's peak when the exporter sends one, else the highest usage sampled."""
    return mem_max if mem_max is not None else mem_usage


def seen(job_ids: Iterable[int], seconds: int) -> str:
    """Cores of each job the exporter saw in the period (absent: it never saw the job: no process)."""
    return f"count by (slurmjobid) (max_over_time({job_selector(CORE_COUNTER, job_ids)}[{duration(seconds)}]))"


def gpus_measured(job_ids: Iterable[int], seconds: int) -> str:
    """GPUs of each job with utilisation series in the period (absent: not measured, or not seen at all)."""
    return f"count by (slurmjobid) (max_over_time({job_selector(GPU_UTILISATION, job_ids)}[{duration(seconds)}]))"


def gpu_state(allocated: int, measured: int | None, seen_cores: int | None) -> str:
    """``measured``, ``not-measured`` (the exporter saw the job but sends no GPU series) or ``not-seen``.

    The exporter skips a job whose cgroup has no process, so ``not-seen`` is a job with nothing
    running; a job it saw without GPU series runs where NVML/DCGM cannot read the GPUs.
    """
    if not allocated:
        return "none"
    if measured:
        return "measured"
    return "not-measured" if seen_cores else "not-seen"
