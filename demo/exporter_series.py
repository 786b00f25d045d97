"""slurm-job-exporter v0.4.12's series, written as OpenMetrics text: one home for the writers.

Used by the demo's Prometheus (demo/metrics.py: backfill and a live endpoint) and by the stack's
generator (scripts/stack.d/gen_metrics.py). Standard library only (the stack runs it with the
system Python). The series behave as the real exporter's (shared/reference/domain.md 4.2): labels
user, account, slurmjobid (+ core, state, exe, gpu, gpu_type, direction); no ``cluster`` label
unless a site's scrape config adds one (``extra_labels``); CPU counters in nanoseconds per core
from zero at the job's start; ``slurm_job_process_usage_total`` (seconds) only for executables
past 60 CPU-seconds and never bash, ssh, sshd or srun; thread states only when present; memory in
bytes; GPU power in milliwatts; utilisation in percent.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict

EXCLUDED_EXES = ("bash", "ssh", "sshd", "srun")  # the exporter never reports these
MIN_EXE_SECONDS = 60  # nor an executable below 60 CPU-seconds
GPU_TYPES = {  # gres type -> (exporter gpu_type string, memory bytes, TDP W, idle W, first index in gres.conf)
    "a100": ("NVIDIA A100-SXM4-40GB", 40 * 2**30, 400, 55, 0),
    "v100": ("Tesla V100-SXM2-16GB", 16 * 2**30, 300, 55, 2),
}
# Every family written: (type, help), as the exporters declare them. A counter's samples end in _total.
METRICS: dict[str, tuple[str, str]] = {
    "slurm_job_core_usage": ("counter", "Cpu usage of cores allocated to a job"),
    "slurm_job_memory_usage": ("gauge", "Memory used by a job"),
    "slurm_job_memory_max": ("gauge", "Maximum memory used by a job"),
    "slurm_job_memory_limit": ("gauge", "Memory limit of a job"),
    "slurm_job_memory_cache": ("gauge", "Memory cache used by a job"),
    "slurm_job_memory_rss": ("gauge", "Memory RSS used by a job"),
    "slurm_job_memory_rss_huge": ("gauge", "Memory RSS huge used by a job"),
    "slurm_job_memory_mapped_file": ("gauge", "Memory mapped file used by a job"),
    "slurm_job_memory_active_file": ("gauge", "Memory active file used by a job"),
    "slurm_job_memory_inactive_file": ("gauge", "Memory inactive file used by a job"),
    "slurm_job_memory_unevictable": ("gauge", "Memory unevictable used by a job"),
    "slurm_job_process_count": ("gauge", "Number of processes in a job"),
    "slurm_job_threads_count": ("gauge", "Number of threads in a job"),
    "slurm_job_process_usage": ("counter", "Cpu usage of processes within a job"),
    "slurm_job_memory_total_gpu": ("gauge", "Memory available on a GPU"),
    "slurm_job_memory_usage_gpu": ("gauge", "Memory used on a GPU"),
    "slurm_job_power_gpu": ("gauge", "Power used by a GPU in mW"),
    "slurm_job_utilization_gpu": (
        "gauge",
        "Percent of time over the past sample period during which one or more kernels was executing on the GPU.",
    ),
    "slurm_job_utilization_gpu_memory": (
        "gauge",
        "Percent of time over the past sample period during which global (device) memory was being read or written.",
    ),
    "slurm_job_sm_occupancy_gpu": ("gauge", "Ratio of the number of warps resident on an SM"),
    "slurm_job_tensor_gpu": ("gauge", "Ratio of cycles the tensor (HMMA) pipe is active"),
    "slurm_job_fp64_gpu": ("gauge", "Ratio of cycles the fp64 pipe is active"),
    "slurm_job_fp32_gpu": ("gauge", "Ratio of cycles the fp32 pipe is active"),
    "slurm_job_fp16_gpu": ("gauge", "Ratio of cycles the fp16 pipe is active"),
    "slurm_job_pcie_gpu": ("gauge", "PCIe throughput in bytes/s"),
    "slurm_job_nvlink_gpu": ("gauge", "NVLink throughput in bytes/s"),
    # prometheus-slurm-exporter's, which the stack's generator writes too (scripts/stack.d/gen_metrics.py)
    "slurm_account_levelfs": ("gauge", "LevelFS of an account (sshare)"),
    "slurm_account_normusage": ("gauge", "Normalised usage of an account (sshare)"),
    "slurm_account_normshares": ("gauge", "Normalised shares of an account (sshare)"),
    **{
        f"slurm_{kind}_{state}": ("gauge", f"slurm {kind} {state}")
        for kind in ("cpus", "gpus")
        for state in ("total", "alloc", "idle")
    },
}


class Families:
    """OpenMetrics families; each family's samples are written contiguously, series by series."""

    def __init__(self) -> None:
        self.fams: OrderedDict[str, OrderedDict[str, list[tuple[int, float]]]] = OrderedDict()
        self._keys: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]] = {}

    def add(self, family: str, labels: dict[str, str], t: int, v: float) -> None:
        ident = (family, tuple(labels.items()))
        samples = self._keys.get(ident)
        if samples is None:  # a new series: its sample line prefix is formatted once
            name = family + "_total" if METRICS[family][0] == "counter" else family
            lbl = ",".join(f'{k}="{_esc(str(val))}"' for k, val in labels.items())
            samples = self._keys[ident] = self.fams.setdefault(family, OrderedDict()).setdefault(f"{name}{{{lbl}}}", [])
        samples.append((t, v))

    def latest(self) -> str:
        """The text format a live exporter serves: each series' last sample, no timestamps."""
        lines = []
        for family, series in self.fams.items():
            mtype, help_ = METRICS[family]
            lines.append(f"# HELP {family} {help_}\n# TYPE {family} {mtype}\n")
            lines += [f"{key} {_num(max(samples)[1])}\n" for key, samples in series.items()]
        return "".join(lines)

    def write(self, path: str) -> int:
        n = 0
        with open(path, "w") as f:
            for family, series in self.fams.items():
                mtype, help_ = METRICS[family]
                f.write(f"# HELP {family} {help_}\n# TYPE {family} {mtype}\n")
                for key, samples in series.items():
                    last = None
                    for t, v in sorted(samples):
                        if t == last:
                            continue
                        last = t
                        f.write(f"{key} {_num(v)} {t}\n")
                        n += 1
            f.write("# EOF\n")
        return n


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    return f"{v:.6g}"


# ---------------------------------------------------------------------------- job series
def job_series(
    fx: Families,
    *,
    jobid: str,
    user: str,
    account: str,
    node: str,
    cores: int,
    t0: int,
    t1: int,
    step: int,
    cpu_seconds: float,
    mem_limit: float,
    mem_peak: float,
    gpus: list[tuple[str, int]],
    exes: list[tuple[str, float]],
    seed: int,
    memory_max: bool = True,
    gpu_measured: bool = True,
    ncpu: int = 8,
    gpu_load: float = 1.0,
    extra_labels: dict[str, str] | None = None,
) -> None:
    """One job as slurm-job-exporter reports it; `exes` share its CPU time (path, fraction).

    memory_max=False: cgroup v2 before kernel 6.8 (no slurm_job_memory_max); gpu_measured=False: a
    node without NVML/DCGM (no GPU series, though the job holds GPUs). ncpu: the node's CPUs (the
    job's cpuset is numbered within them); gpu_load: a factor on GPU utilisation (0: GPUs held
    and never used, as the idle-GPU page lists them); extra_labels: what a site's scrape config adds.
    """
    rng = random.Random(seed)
    base = {**(extra_labels or {}), "instance": f"{node}:9798", "job": "slurm-job-exporter", "user": user}
    base |= {"account": account, "slurmjobid": jobid}
    ts = list(range(t0, t1 + 1, step))
    if ts[-1] != t1:
        ts.append(t1)
    span = max(1, t1 - t0)
    cores = max(1, cores)
    cpuset = [str((seed * cores + c) % ncpu) for c in range(min(cores, ncpu))]  # the job's CPU numbers
    peak_at = round(0.75 * (len(ts) - 1))  # usage reaches the peak once, as MaxRSS says it did
    highest = 0.0
    for i, t in enumerate(ts):
        frac = (t - t0) / span
        wobble = 0.5 + 0.5 * math.sin(i / 7.0 + seed)
        # CPU: the job's CPU time, counted from zero at its start, spread over its cores
        for core in cpuset:
            fx.add("slurm_job_core_usage", {**base, "core": core}, t, round(cpu_seconds / len(cpuset) * frac * 1e9))
        usage = mem_peak if i == peak_at else mem_peak * min(1.0, 0.3 + 0.7 * frac) * (0.85 + 0.15 * wobble)
        highest = max(highest, usage)
        memory = {
            "usage": usage,
            "max": highest,
            "limit": mem_limit,
            "cache": usage * 0.08,
            "rss": usage * 0.9,
            "rss_huge": usage * 0.05,
            "mapped_file": usage * 0.02,
            "active_file": usage * 0.03,
            "inactive_file": usage * 0.04,
            "unevictable": 0,
        }
        for name, v in memory.items():
            if name != "max" or memory_max:
                fx.add(f"slurm_job_memory_{name}", base, t, round(v))
        fx.add("slurm_job_process_count", base, t, len(exes))
        running = round(min(cores, cpu_seconds / span) if span else 0)
        for state, v in (("running", running), ("sleeping", 1 + cores - running)):
            if v > 0:  # the exporter sends only the states present
                fx.add("slurm_job_threads_count", {**base, "state": state}, t, v)
        for exe, share in exes:
            used = cpu_seconds * share * frac
            if used >= MIN_EXE_SECONDS and exe.rsplit("/", 1)[-1] not in EXCLUDED_EXES:
                fx.add("slurm_job_process_usage", {**base, "exe": exe}, t, round(used, 3))
        for gtype, idx in gpus if gpu_measured else []:
            gname, gmem, tdp, idle, _ = GPU_TYPES[gtype]
            g = {**base, "gpu": str(idx), "gpu_type": gname}
            util = max(0.0, min(100.0, gpu_load * (70 + 25 * math.sin(i / 9.0 + idx) + rng.uniform(-5, 5))))
            gpu = {
                "slurm_job_memory_total_gpu": gmem,
                "slurm_job_memory_usage_gpu": gmem * (0.2 + 0.5 * util / 100),
                "slurm_job_power_gpu": 1000 * (idle + (tdp - idle) * util / 100),
                "slurm_job_utilization_gpu": util,
                "slurm_job_utilization_gpu_memory": util * 0.6,
                "slurm_job_sm_occupancy_gpu": util * 0.4,
                "slurm_job_tensor_gpu": util * 0.3,
                "slurm_job_fp64_gpu": util * 0.05,
                "slurm_job_fp32_gpu": util * 0.5,
                "slurm_job_fp16_gpu": util * 0.2,
            }
            for family, v in gpu.items():
                fx.add(family, g, t, round(v, 3) if isinstance(v, float) else v)
            for direction, factor in (("TX", 1.0), ("RX", 2.5)):
                fx.add("slurm_job_pcie_gpu", {**g, "direction": direction}, t, round(factor * 1e9 * util / 100))
                fx.add("slurm_job_nvlink_gpu", {**g, "direction": direction}, t, round(factor * 5e9 * util / 100))
