"""What the staff see beside a request: the job now (progress, CPU efficiency), its partition's limits, reservations."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _

from extensions.models import ExtensionRequest
from extensions.policy import array_message, granted_hours, reservation_conflicts
from slurm import exporter, scontrol
from slurm.commands import SlurmCommandError
from slurm.decoders import format_duration
from slurm.usage import cpu_efficiency
from userportal.errors import DataSourceError
from userportal.prometheus import MetricsSession

logger = logging.getLogger(__name__)


@dataclass
class JobView:
    job: scontrol.JobInfo | None = None
    partition: scontrol.Partition | None = None
    conflicts: list[str] = field(default_factory=list)
    progress: int | None = None  # percent of the time limit used
    efficiency: int | None = None  # CPU efficiency, percent
    notice: str = ""

    @property
    def time_limit(self) -> str:
        limit = self.job.time_limit if self.job else None
        return scontrol.format_minutes(limit) if limit else "UNLIMITED"

    @property
    def run_time(self) -> str:
        return format_duration(self.job.run_seconds) if self.job else "—"

    @property
    def max_time(self) -> str:
        limit = self.partition.max_time if self.partition else None
        return scontrol.format_minutes(limit) if limit else "UNLIMITED"

    @property
    def default_time(self) -> str:
        limit = self.partition.default_time if self.partition else None
        return scontrol.format_minutes(limit) if limit else "—"


def job_view(job_id: str, *, cluster: str, hours: int = 0) -> JobView:
    """The job as slurmctld knows it now; a notice instead when it does not answer or forgot the job."""
    view = JobView()
    try:
        view.job = scontrol.job(job_id, cluster=cluster)
        if view.job is None:
            view.notice = _("Slurm no longer knows this job: it ended.")
            return view
        if view.job.partition:
            view.partition = scontrol.partition(view.job.partition, cluster=cluster)
        if view.job.time_limit is not None:
            limit = view.job.time_limit + hours * 60
            view.conflicts = reservation_conflicts(
                view.job, view.partition, scontrol.reservations(cluster=cluster), new_limit=limit, now=timezone.now()
            )
    except scontrol.NotOneJob:
        view.job, view.notice = None, array_message()
        return view
    except SlurmCommandError as exc:
        logger.warning("extensions: scontrol failed: %s", exc)
        view.notice = _("Slurm's controller did not answer; the job's current state is unknown.")
        return view
    job = view.job
    if job.time_limit:
        view.progress = min(100, round(100 * job.run_seconds / (job.time_limit * 60)))
    view.efficiency = _cpu_efficiency(job)
    return view


def _cpu_efficiency(job: scontrol.JobInfo) -> int | None:
    """A running job's CPU efficiency over its life, from slurm-job-exporter's counters (None without them)."""
    if job.state != "RUNNING" or job.run_seconds < 60 or job.cpus <= 0 or not job.raw_id.isdigit():
        return None
    try:
        samples = MetricsSession().query(exporter.cpu_seconds([int(job.raw_id)], job.run_seconds))
    except DataSourceError:
        return None
    used = sum(sample.value for sample in samples) if samples else None
    ratio = cpu_efficiency(used, job.cpus, job.run_seconds)
    return None if ratio is None else round(100 * ratio)


def totals(extension: ExtensionRequest) -> int:
    """Hours granted to the job by other requests."""
    return granted_hours(extension.cluster, extension.job_id, exclude_pk=extension.pk)
