"""What jobs used, one function per figure, for every page that shows it (jobstats, top, accountstats, billing).

* **CPU time of a finished job**: Slurm's accounting, the sum over its steps of user + system
  time, which is what sacct prints as TotalCPU and seff uses (:func:`step_totals`).
* **CPU time of a running job**: slurm-job-exporter's core counters, their increase over the
  job's life (:func:`slurm.exporter.cpu_seconds`), never an average of rate() points.
* **CPU efficiency**: CPU time ÷ (cores × elapsed) (:func:`cpu_efficiency`); billing's "unused"
  share is 1 − that, clamped to [0, 1] (:func:`unused_cpu_share`).
* **Memory peak of a finished job**: the largest MaxRSS of its steps (seff's "Memory Utilized");
  of a running job, the exporter's peak (:func:`slurm.exporter.peak_of`).
* **Use over a period** (top, accountstats): :func:`slurm.window_use.use_in_window` adds up
  finished jobs from accounting and running jobs from their counters, per (user, account).

Pure: no database, no network (jobstats' domain modules import it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from slurm.decoders import TRES_MEM, parse_tres, step_cpu_seconds


@dataclass(frozen=True)
class StepTotals:
    cpu_seconds: float  # sacct's TotalCPU: user + system over the steps
    max_rss_bytes: int | None  # sacct's MaxRSS: the largest step's; None before the first sample


def step_totals(steps: Iterable[Any]) -> StepTotals | None:
    """TotalCPU and MaxRSS of a job from its step rows (as sacct and seff compute them); None without steps."""
    cpu = 0.0
    max_rss: int | None = None
    any_step = False
    for step in steps:
        any_step = True
        cpu += step_cpu_seconds(step.user_sec, step.user_usec, step.sys_sec, step.sys_usec)
        rss = parse_tres(step.tres_usage_in_max).get(TRES_MEM)
        if rss is not None:
            max_rss = rss if max_rss is None else max(max_rss, rss)
    return StepTotals(cpu, max_rss) if any_step else None


def cpu_efficiency(cpu_seconds: float | None, cores: float, elapsed: float) -> float | None:
    """CPU time over the core-seconds allocated (seff's "CPU Efficiency"); None when either is unknown or zero."""
    if cpu_seconds is None or cores <= 0 or elapsed <= 0:
        return None
    return cpu_seconds / (cores * elapsed)


def unused_cpu_share(cpu_seconds: np.ndarray, core_seconds: np.ndarray) -> np.ndarray:
    """Per job, the share of its allocated CPU time it did not use: 1 − efficiency clamped to [0, 1] (0 if none allocated)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(core_seconds > 0, np.clip(cpu_seconds / core_seconds, 0.0, 1.0), 1.0)
    return 1.0 - efficiency
