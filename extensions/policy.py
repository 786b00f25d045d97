"""The rules of walltime extensions (settings EXTENSIONS_*): who may ask, how much, and what is accepted alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils.translation import gettext as _

from extensions.models import GRANTED_STATUSES, OPEN_STATUSES, ExtensionRequest
from slurm.scontrol import JobInfo, Partition, Reservation


@dataclass(frozen=True)
class Policy:
    max_hours: int
    max_total_hours: int
    allowed_users: tuple[str, ...]
    allowed_accounts: tuple[str, ...]
    auto_accept_hours: int

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            max_hours=settings.EXTENSIONS_MAX_HOURS,
            max_total_hours=settings.EXTENSIONS_MAX_TOTAL_HOURS,
            allowed_users=tuple(settings.EXTENSIONS_ALLOWED_USERS),
            allowed_accounts=tuple(settings.EXTENSIONS_ALLOWED_ACCOUNTS),
            auto_accept_hours=settings.EXTENSIONS_AUTO_ACCEPT_HOURS,
        )

    def may_ask(self, username: str, account: str) -> bool:
        """Everyone when neither list is set; else the listed users and the jobs of the listed accounts."""
        if not self.allowed_users and not self.allowed_accounts:
            return True
        return username in self.allowed_users or account in self.allowed_accounts


def granted_hours(cluster: str, job_id: str, *, exclude_pk: int | None = None) -> int:
    """Hours already accepted for the job (what counts against EXTENSIONS_MAX_TOTAL_HOURS)."""
    rows = ExtensionRequest.objects.filter(cluster=cluster, job_id=job_id, status__in=GRANTED_STATUSES)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    return int(rows.aggregate(total=Sum("hours"))["total"] or 0)


def array_message() -> str:
    """Why an id that names several jobs (scontrol.NotOneJob) cannot be extended."""
    return _("This id names a job array or several of its tasks: ask for one task, as in 1234_7.")


def validate(job: JobInfo | None, *, username: str, hours: int, cluster: str, policy: Policy) -> dict[str, list[str]]:
    """What stops ``username`` asking ``hours`` more for ``job`` ({} when nothing does), by form field."""
    errors: dict[str, list[str]] = {}
    if job is None or not job.extendable:
        return {"__all__": [_("Only a pending or running job can be given more time; this one has ended.")]}
    if job.user != username:
        return {"__all__": [_("Only the job's owner may ask for more time.")]}
    if not policy.may_ask(username, job.account):
        return {"__all__": [_("Time extensions are not offered for this account; contact support.")]}
    if job.time_limit is None:
        return {"__all__": [_("This job has no time limit to extend.")]}
    if ExtensionRequest.objects.filter(cluster=cluster, job_id=job.job_id, status__in=OPEN_STATUSES).exists():
        return {"__all__": [_("This job already has a request waiting for a decision.")]}
    if hours < 1 or hours > policy.max_hours:
        errors.setdefault("hours", []).append(
            _("Ask for between 1 and %(max)d hours.") % {"max": policy.max_hours},
        )
    granted = granted_hours(cluster, job.job_id)
    if granted + hours > policy.max_total_hours:
        errors.setdefault("hours", []).append(
            _("A job may be extended by %(max)d hours in all; this one has had %(granted)d already.")
            % {"max": policy.max_total_hours, "granted": granted}
        )
    return errors


def new_end(job: JobInfo, new_limit: int, now: datetime) -> datetime:
    """When the job would end with ``new_limit`` minutes (a pending job: as if it started now)."""
    return (job.start if job.start and job.state != "PENDING" else now) + timedelta(minutes=new_limit)


def reservation_conflicts(
    job: JobInfo,
    partition: Partition | None,
    reservations: Sequence[Reservation],
    *,
    new_limit: int,
    now: datetime,
) -> list[str]:
    """Reservations on the job's nodes (a pending job: its partition's) before it would end: their names."""
    nodes = set(job.nodes) or set(partition.nodes if partition else ())
    end = new_end(job, new_limit, now)
    names = []
    for reservation in reservations:
        if reservation.name == job.reservation:
            continue  # the job runs inside it: the extension is checked against it by Slurm
        if reservation.end is not None and reservation.end <= now:
            continue
        if reservation.start is not None and reservation.start >= end:
            continue
        if not nodes or set(reservation.nodes) & nodes:
            names.append(reservation.name)
    return names


def auto_acceptable(
    job: JobInfo,
    *,
    hours: int,
    policy: Policy,
    partition: Partition | None,
    reservations: Sequence[Reservation],
    now: datetime,
) -> bool:
    """Small enough, within the partition's MaxTime, and no reservation wants the nodes before the new end."""
    if not policy.auto_accept_hours or hours > policy.auto_accept_hours or job.time_limit is None:
        return False
    new_limit = job.time_limit + hours * 60
    if partition is None or (partition.max_time is not None and new_limit > partition.max_time):
        return False
    return not reservation_conflicts(job, partition, reservations, new_limit=new_limit, now=now)
