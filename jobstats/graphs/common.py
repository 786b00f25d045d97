"""What every jobstats graph shares: the scope of a job graph, a graph's spec, the query and label helpers.

The graphs of the user and job pages make one PromQL union per graph and one Plotly figure out.
Names, units and computations follow TT (domain 4.5) with its bugs fixed: GPU values are per
GPU, x values are UTC, empty results give the "no data" figure, and every label value goes
through userportal.promql. A graph whose exporter the site does not run (JOBSTATS_METRICS) is
not offered and answers "no data" without asking Prometheus. The graphs themselves live in
graphs.job (a job's exporter and Lustre series, and the registry of job graphs), graphs.node
(whole nodes: node_exporter and the power estimate) and graphs.user (a user's current use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from userportal.figures import Figure, figure, layout, no_data, trace
from userportal.prometheus import MetricsSession, Series
from userportal.promql import by_tag
from userportal.windows import DAY, Window

GIB = 1024**3
MIB = 1024**2
MAX_NODES = 64  # node-level graphs of bigger jobs would be unreadable (and slow)


@dataclass(frozen=True)
class JobScope:
    """What a job graph is about: one job, or several (a job-id list)."""

    job_ids: tuple[int, ...]
    nodes: tuple[str, ...]
    cpus: int
    gpus: int
    gpu_type: str | None = None  # Slurm's GRES type (a100), a fallback for the model
    timelimit_end: float | None = None

    @property
    def multi(self) -> bool:
        return len(self.job_ids) > 1


JobBuilder = Callable[[MetricsSession, JobScope, Window], Figure]


Subject = TypeVar("Subject")  # a JobScope for job graphs, a username for user graphs


@dataclass(frozen=True)
class GraphSpec(Generic[Subject]):
    name: str
    title: str | Promise
    source: str  # a JOBSTATS_METRICS source: job, node, lustre, power
    build: Callable[[MetricsSession, Subject, Window], Figure]
    gpu: bool = False  # only for jobs with GPUs
    default_delta: int = 7 * DAY  # user graphs: the default window

    def available(self) -> bool:
        return self.source in settings.JOBSTATS_METRICS and (
            self.source != "power" or "node" in settings.JOBSTATS_METRICS
        )

    def draw(self, session: MetricsSession, subject: Subject, window: Window) -> Figure:
        """The figure, or "no data" without asking Prometheus when the cluster does not collect its series."""
        if not self.available():
            return no_data(str(self.title), _("This cluster does not collect these metrics."))
        return self.build(session, subject, window)


def prefix(scope: JobScope, labels: dict[str, str], key: str = "slurmjobid") -> str:
    """``<job id> · `` before a series' name when the graph shows several jobs."""
    return f"{labels.get(key, '?')} · " if scope.multi else ""


def gpu_label(gpu: str) -> str:
    """GPU index, or the short form of a MIG UUID (characters 4-12, as TT shows it)."""
    return gpu[4:12] if gpu.startswith("MIG-") else gpu


def range_by_tag(session: MetricsSession, expr: str, window: Window) -> dict[str, list[Series]]:
    """A union (userportal.promql) over ``window``, split back by tag."""
    return by_tag(session.query_range(expr, window))


def sorted_by(series: list[Series], *keys: str) -> list[Series]:
    return sorted(series, key=lambda s: tuple(s.labels.get(k, "") for k in keys))


def lustre_bandwidth(result: dict[str, list[Series]], name: Callable[[Series, str], str], *keys: str) -> Figure:
    """Lustre reads (up) and writes (down) in MiB/s, from a union tagged ``read`` and ``write``."""
    traces = [
        trace(s, name(s, str(word)), scale=1 / MIB, unit="MiB/s", negative=direction == "write")
        for direction, word in (("read", _("read")), ("write", _("write")))
        for s in sorted_by(result.get(direction, []), *keys)
    ]
    return figure(traces, layout(_("Lustre bandwidth"), _("MiB/s (read up, write down)")), unit="MiB/s")
