"""Series shaped like the real slurm-job-exporter v0.4.12 sends them, for the promtool tests.

Checked against the exporter's source and a real job (shared/reference/domain.md 4.2):

* labels ``user``, ``account``, ``slurmjobid`` (+ ``core``, ``state``, ``exe``, ``gpu``,
  ``gpu_type``); the scrape adds ``instance`` and ``job``; there is no ``cluster`` label;
* ``core`` is the CPU number of the job's cpuset (``"12"``, ``"13"``), not 0..n-1;
* ``slurm_job_core_usage_total`` counts nanoseconds per core since the job's cgroup was made;
  on cgroup v2 the exporter spreads ``usage_usec`` evenly over the cores;
* the exporter sees a job only once it has a process, on its own 30 s scrape schedule (not
  aligned with the job's start), and Prometheus writes a staleness marker at the first scrape
  after the job's cgroup is gone;
* ``slurm_job_threads_count`` carries only the states present at the scrape;
* ``slurm_job_process_usage_total`` (seconds) exists only for executables past 60 CPU-seconds,
  never bash, ssh, sshd or srun: the series appears mid-job;
* ``slurm_job_memory_max`` is absent on cgroup v2 before kernel 6.8;
* GPU series exist only when NVML or DCGM can read the GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from promtool_client import STALE, InputSeries

GIB = 1024**3
EXCLUDED_EXES = ("bash", "ssh", "sshd", "srun")


@dataclass
class ExporterJob:
    job_id: int
    start: int  # epoch seconds (promtool's clock starts at 0)
    end: int | None  # None: still running at the last scrape
    cores: tuple[int, ...] = (12, 13)
    busy: float | Callable[[float], float] = 1.92  # cores busy at a time (seconds since start)
    user: str = "alice"
    account: str = "physics"
    node: str = "cn01"
    mem_limit: int = 4 * GIB
    mem_usage: float | Callable[[float], float] = 1.5 * GIB
    memory_max: bool = True  # False: cgroup v2 with a kernel before 6.8
    cgroup_v2: bool = False  # per-core usage spread evenly, as the exporter does on v2
    exes: dict[str, float] = field(default_factory=lambda: {"/usr/bin/python3.11": 0.9, "/usr/bin/bash": 0.1})
    gpus: tuple[tuple[str, str, float], ...] = ()  # (index, gpu_type, utilisation %) when measured
    gpu_measured: bool = True
    scrape_offset: int = 17  # scrapes at t ≡ offset (mod interval)
    interval: int = 30

    def busy_at(self, seconds: float) -> float:
        return self.busy(seconds) if callable(self.busy) else self.busy

    def memory_at(self, seconds: float) -> float:
        return self.mem_usage(seconds) if callable(self.mem_usage) else self.mem_usage

    def cpu_seconds(self, until: float) -> float:
        """The job's true CPU time from its start to ``until`` (1-second integration of busy)."""
        stop = min(until, self.end) if self.end is not None else until
        return sum(self.busy_at(s + 0.5) for s in range(int(stop - self.start)))

    def scrapes(self, now: int) -> list[int]:
        first = self.start + 1 + (self.scrape_offset - self.start - 1) % self.interval
        last = now if self.end is None else min(self.end, now)
        return list(range(first, last + 1, self.interval))

    def series(self, now: int) -> list[InputSeries]:
        base = {
            "user": self.user,
            "account": self.account,
            "slurmjobid": str(self.job_id),
            "instance": f"{self.node}:9798",
            "job": "slurm-job-exporter",
        }
        made: dict[tuple[tuple[str, str], ...], InputSeries] = {}

        def put(name: str, labels: dict[str, str], t: int, value: float | str) -> None:
            full = {"__name__": name, **base, **labels}
            key = tuple(sorted(full.items()))
            made.setdefault(key, InputSeries(full)).points.append((t, value))

        times = self.scrapes(now)
        weights = [1.0] * len(self.cores) if self.cgroup_v2 else [1.0 + 0.2 * i for i in range(len(self.cores))]
        total_weight = sum(weights)
        for t in times:
            cpu = self.cpu_seconds(t)
            for core, weight in zip(self.cores, weights, strict=True):
                put("slurm_job_core_usage_total", {"core": str(core)}, t, round(cpu * weight / total_weight * 1e9))
            memory = self.memory_at(t - self.start)
            put("slurm_job_memory_usage", {}, t, round(memory))
            if self.memory_max:
                peak = max(self.memory_at(s - self.start) for s in [*range(self.start, t + 1, 5), t])
                put("slurm_job_memory_max", {}, t, round(peak))
            put("slurm_job_memory_limit", {}, t, self.mem_limit)
            put("slurm_job_memory_rss", {}, t, round(memory * 0.9))
            put("slurm_job_memory_cache", {}, t, round(memory * 0.05))
            put("slurm_job_process_count", {}, t, 1 + len(self.exes))
            running = round(self.busy_at(t - self.start))
            for state, count in (("running", running), ("sleeping", 2)):
                if count:
                    put("slurm_job_threads_count", {"state": state}, t, count)
            for exe, share in self.exes.items():
                used = cpu * share
                if used >= 60 and exe.rsplit("/", 1)[-1] not in EXCLUDED_EXES:
                    put("slurm_job_process_usage_total", {"exe": exe}, t, round(used, 2))
            if self.gpu_measured:
                for index, gpu_type, util in self.gpus:
                    labels = {"gpu": index, "gpu_type": gpu_type}
                    put("slurm_job_utilization_gpu", labels, t, util)
                    put("slurm_job_memory_usage_gpu", labels, t, 10 * GIB)
                    put("slurm_job_memory_total_gpu", labels, t, 40 * GIB)
                    put("slurm_job_power_gpu", labels, t, 55_000 + 3_000 * util)
        if self.end is not None and times:
            after = times[-1] + self.interval
            if after <= now:
                for item in made.values():
                    item.points.append((after, STALE))
        return list(made.values())


def all_series(jobs: list[ExporterJob], now: int) -> list[InputSeries]:
    return [series for job in jobs for series in job.series(now)]
