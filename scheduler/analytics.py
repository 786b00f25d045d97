"""Scheduler analytics over a window (and optionally one account), per partition, from the job table:
wait times (by partition and job size), run time against the time limit, the time-out ratio, and the
fair share (slurm-exporter's LevelFS of the job's account) at the job's start.

Jobs counted are those that started in the window (wait and fair share at start) and, for run time and
time-outs, those of them that have ended.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import fmean, median
from typing import NamedTuple

from django.utils.translation import gettext as _

from slurm.decoders import JobState
from slurm.models.clusters import cluster_models
from userportal.prometheus import MetricsSession, Series
from userportal.promql import selector
from userportal.windows import Window

MAX_JOBS = 100_000  # rows read per page; beyond that the most recent ones
LEVELFS_LAG = 900  # a LevelFS sample up to 15 minutes after the start stands for the value at the start
SIZES = ((1, "1"), (8, "2–8"), (64, "9–64"), (512, "65–512"), (None, "> 512"))


def size_class(cpus: int) -> str:
    for limit, label in SIZES:
        if limit is None or cpus <= limit:
            return label
    return SIZES[-1][1]


@dataclass(frozen=True)
class JobRow:
    partition: str
    account: str
    cpus: int
    eligible: int
    start: int
    end: int  # 0: running
    timelimit_min: int
    state: int

    @property
    def wait(self) -> int:
        return max(self.start - self.eligible, 0) if self.eligible else 0

    @property
    def ended(self) -> bool:
        return self.end > 0


@dataclass
class PartitionStats:
    partition: str
    jobs: int = 0
    waits: list[int] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # run time / time limit of ended jobs
    ended: int = 0
    timeouts: int = 0
    levelfs: list[float] = field(default_factory=list)
    waits_by_size: dict[str, list[int]] = field(default_factory=dict)

    @property
    def wait_median_h(self) -> float | None:
        return median(self.waits) / 3600 if self.waits else None

    @property
    def wait_mean_h(self) -> float | None:
        return fmean(self.waits) / 3600 if self.waits else None

    @property
    def ratio_median(self) -> float | None:
        return median(self.ratios) if self.ratios else None

    @property
    def timeout_ratio(self) -> float | None:
        return self.timeouts / self.ended if self.ended else None

    @property
    def levelfs_mean(self) -> float | None:
        return fmean(self.levelfs) if self.levelfs else None

    def size_cells(self) -> list[tuple[str, float | None]]:
        """(size class, median wait in hours) for every class, in SIZES order."""
        medians = self.size_medians_h()
        return [(label, medians.get(label)) for _limit, label in SIZES]

    def size_medians_h(self) -> dict[str, float]:
        return {label: median(waits) / 3600 for label, waits in self.waits_by_size.items() if waits}


def jobs_started(cluster: str, window: Window, account: str = "") -> list[JobRow]:
    """Jobs that started in ``window`` (of ``account`` when given), at most MAX_JOBS, most recent first."""
    rows = cluster_models(cluster).job.objects.filter(time_start__gte=window.start, time_start__lte=window.end)
    if account:
        rows = rows.filter(account=account)
    values = rows.order_by("-time_start").values_list(
        "partition", "account", "cpus_req", "time_eligible", "time_start", "time_end", "timelimit", "state"
    )[:MAX_JOBS]
    return [JobRow(p or "", a or "", c, e, s, t, lim, st) for p, a, c, e, s, t, lim, st in values]


class LevelFS(NamedTuple):
    """slurm-exporter's LevelFS series by account, each point the latest sample of the ``step`` ending there."""

    series: dict[str, Series]
    step: int


def levelfs_at_start(session: MetricsSession, jobs: list[JobRow], window: Window) -> LevelFS:
    """slurm-exporter's LevelFS series of the jobs' accounts over the window (widened by LEVELFS_LAG), by account."""
    accounts = sorted({job.account for job in jobs if job.account})
    if not accounts:
        return LevelFS({}, 0)
    widened = Window.of(window.start, window.end + LEVELFS_LAG)
    # each step's latest sample (a gauge scraped every minute would vanish between steps hours apart)
    levelfs = selector("slurm_account_levelfs", regex={"account": accounts})
    expr = f"max by (account) (last_over_time({levelfs}[{widened.step}s]))"
    return LevelFS({s.labels.get("account", ""): s for s in session.query_range(expr, widened)}, widened.step)


def _sample_after(series: Series, moment: int, step: int) -> float | None:
    """The value of the first point at or after ``moment``: the latest sample of the step ending there.

    Each point is ``last_over_time`` over one step (levelfs_at_start), so a point less than a step
    (or LEVELFS_LAG, when steps are short) after the start holds a sample of the start's step.
    """
    index = bisect.bisect_left(series.timestamps, moment)
    if index < len(series.timestamps) and series.timestamps[index] - moment <= max(LEVELFS_LAG, step):
        value = series.values[index]
        return value if value == value else None  # NaN is no value
    return None


def by_partition(jobs: Iterable[JobRow], levelfs: LevelFS | None = None) -> list[PartitionStats]:
    stats: dict[str, PartitionStats] = {}
    for job in jobs:
        entry = stats.setdefault(job.partition, PartitionStats(job.partition))
        entry.jobs += 1
        entry.waits.append(job.wait)
        entry.waits_by_size.setdefault(size_class(job.cpus), []).append(job.wait)
        if job.ended:
            entry.ended += 1
            entry.timeouts += int(job.state & 0xFF == JobState.TIMEOUT)
            if job.timelimit_min:
                entry.ratios.append((job.end - job.start) / (job.timelimit_min * 60))
        series = levelfs.series.get(job.account) if levelfs else None
        value = _sample_after(series, job.start, levelfs.step) if levelfs and series is not None else None
        if value is not None:
            entry.levelfs.append(value)
    return sorted(stats.values(), key=lambda entry: entry.partition)


def csv_rows(stats: list[PartitionStats]) -> list[list[object]]:
    header: list[object] = [
        _("partition"),
        _("jobs started"),
        _("median wait (h)"),
        _("mean wait (h)"),
        _("median run time / time limit"),
        _("jobs ended"),
        _("time-outs"),
        _("time-out ratio"),
        _("mean LevelFS at start"),
        *(_("median wait (h), %(size)s cores") % {"size": label} for _limit, label in SIZES),
    ]
    rows: list[list[object]] = [header]
    for entry in stats:
        sizes = entry.size_medians_h()
        rows.append(
            [
                entry.partition,
                entry.jobs,
                _round(entry.wait_median_h),
                _round(entry.wait_mean_h),
                _round(entry.ratio_median),
                entry.ended,
                entry.timeouts,
                _round(entry.timeout_ratio),
                _round(entry.levelfs_mean),
                *(_round(sizes.get(label)) for _limit, label in SIZES),
            ]
        )
    return rows


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 4)
