"""The reconciler: start and expire priorities on time, and repair what differs between the database and Slurm.

The portal's database says what Slurm should have; Slurm's accounting database (read-only, through
slurm.models) says what it has; sacctmgr changes it. The beat task priorities.reconcile runs
reconcile() every PRIORITIES_RECONCILE_MINUTES: no task waits in Redis for a start or an end (a
far-future ETA is redelivered after the broker's visibility timeout), so a priority starts and
ends at most one reconcile period late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from priorities.mail import notify_users
from priorities.models import OPEN_STATUSES, PriorityRequest, Status
from priorities.qos import apply_to_slurm, automatic, qos_spec, remove_from_slurm
from slurm import sacctmgr
from slurm.decoders import parse_delta_qos, parse_qos_list, parse_tres
from slurm.models import Qos, Tres, cluster_models
from slurm.sacctmgr import QosSpec
from userportal.audit import audit

logger = logging.getLogger(__name__)


def activate(priority: PriorityRequest, *, at: datetime | None = None) -> bool:
    """Automatic mode: at the start, create the QOS and give it to the users. Idempotent."""
    at = at or timezone.now()
    if priority.status != Status.ACCEPTED or not (priority.start <= at < priority.end) or not automatic():
        return False
    apply_to_slurm(priority)
    with transaction.atomic():
        priority.status = Status.ACTIVE
        priority.applied_at = at
        priority.start_notified_at = at
        priority.save()
        audit(
            "priority.activate", actor="priorities", target=f"priority:{priority.pk}", extra={"qos": priority.qos_name}
        )
        notify_users("started", priority)
    return True


def expire(priority: PriorityRequest, *, at: datetime | None = None) -> bool:
    """At the end: remove the QOS (automatic mode) and archive the request. Idempotent."""
    at = at or timezone.now()
    if priority.end > at or priority.status not in (Status.ACCEPTED, Status.ACTIVE, Status.PENDING):
        return False
    was_pending = priority.status == Status.PENDING
    removed = False
    if automatic() and priority.qos_name and not was_pending:
        remove_from_slurm(priority)
        removed = True
    with transaction.atomic():
        priority.status = Status.EXPIRED
        if removed:
            priority.removed_at = at
        priority.save()
        audit("priority.expire", actor="priorities", target=f"priority:{priority.pk}", extra={"qos": priority.qos_name})
    return True


@dataclass(frozen=True)
class Change:
    priority_id: int | None
    action: str
    detail: str

    def __str__(self) -> str:
        target = f"priority {self.priority_id}" if self.priority_id else "slurm"
        return f"{target}: {self.action} {self.detail}".strip()


@dataclass
class SlurmState:
    """What slurmdbd has for the portal's QOS names: QOS rows and which (user, account) list each."""

    qos: dict[str, Qos]
    users_of: dict[str, set[tuple[str, str]]]

    @classmethod
    def read(cls, names: Iterable[str], cluster: str) -> SlurmState:
        wanted = set(names)
        rows = {q.name: q for q in Qos.objects.filter(name__in=wanted, deleted=0)} if wanted else {}
        by_id = {q.id: q.name for q in rows.values()}
        users_of: dict[str, set[tuple[str, str]]] = {name: set() for name in rows}
        if by_id:
            assoc = cluster_models(cluster).assoc
            for user, acct, qos_text, delta_text in (
                assoc.objects.filter(deleted=0).exclude(user="").values_list("user", "acct", "qos", "delta_qos")
            ):
                ids = set(parse_qos_list(qos_text))
                for sign, qos_id in parse_delta_qos(delta_text):
                    (ids.add if sign == "+" else ids.discard)(qos_id)
                for qos_id in ids & by_id.keys():
                    users_of[by_id[qos_id]].add((user, acct))
        return cls(rows, users_of)


def _qos_matches(row: Qos, spec: QosSpec, gpu_tres_id: int | None) -> bool:
    grp = parse_tres(row.grp_tres)
    return (
        (gpu_tres_id is None or grp == {gpu_tres_id: spec.gpu_count})
        and row.max_wall_duration_per_job == spec.max_wall_minutes
        and (row.priority or 0) == spec.priority
    )


def reconcile(
    *,
    at: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Start what is due, expire what has ended, warn of approaching ends, and repair drift.

    The database is the source of truth. In manual mode, or with ``dry_run``, Slurm is never
    changed: the drift is only reported (staff run the commands shown in the panel).
    """
    at = at or timezone.now()
    changes: list[Change] = []
    write = automatic() and not dry_run

    def record(change: Change) -> None:
        changes.append(change)
        logger.info("reconcile: %s", change)
        if progress:
            progress(change)

    # 1. Time-driven transitions.
    for priority in PriorityRequest.objects.filter(status=Status.ACCEPTED, start__lte=at, end__gt=at):
        if automatic():
            record(Change(priority.pk, "activate", priority.qos_name or ""))
            if not dry_run:
                activate(priority, at=at)
    for priority in PriorityRequest.objects.filter(status__in=OPEN_STATUSES, end__lte=at):
        record(Change(priority.pk, "expire", priority.qos_name or ""))
        if not dry_run:
            expire(priority, at=at)
    warn_after = at + timedelta(hours=settings.PRIORITIES_END_WARNING_HOURS)
    for priority in PriorityRequest.objects.filter(
        status=Status.ACTIVE, end__gt=at, end__lte=warn_after, end_warned_at__isnull=True
    ):
        record(Change(priority.pk, "warn-end", ""))
        if not dry_run:
            with transaction.atomic():
                priority.end_warned_at = at
                priority.save(update_fields=["end_warned_at"])
                notify_users("ending", priority)

    # 2. Drift between what should exist and what slurmdbd has, per cluster.
    managed = PriorityRequest.objects.exclude(qos_name=None).exclude(qos_name="").prefetch_related("members")
    managed = managed.select_related("requester")
    by_cluster: dict[str, list[PriorityRequest]] = {}
    for priority in managed:
        by_cluster.setdefault(priority.cluster, []).append(priority)
    catalog = Tres.catalog() if by_cluster else None
    slurm = sacctmgr.get_client()  # built, never run, in manual mode and dry runs
    for cluster, priorities in by_cluster.items():
        state = SlurmState.read((p.qos_name for p in priorities if p.qos_name), cluster)
        for priority in priorities:
            assert priority.qos_name
            name = priority.qos_name
            should_exist = (
                priority.status == Status.ACTIVE and priority.start <= at < priority.end and priority.applied_at
            )
            row = state.qos.get(name)
            if should_exist:
                spec = qos_spec(priority)
                gpu_id = catalog.id_of("gres", f"gpu:{priority.gpu_type}") if catalog else None
                if row is None:
                    record(Change(priority.pk, "create-qos", name))
                    if write:
                        slurm.add_qos(spec)
                elif not _qos_matches(row, spec, gpu_id):
                    record(Change(priority.pk, "fix-qos-limits", name))
                    if write:
                        slurm.add_qos(spec)
                wanted = {(u, priority.account) for u in priority.usernames()}
                have = state.users_of.get(name, set())
                for user, account in sorted(wanted - have):
                    record(Change(priority.pk, "add-user-qos", f"{user}/{account} {name}"))
                    if write:
                        try:
                            slurm.add_user_qos(user, account, name)
                        except sacctmgr.SacctmgrError as exc:
                            record(Change(priority.pk, "failed", str(exc)))
                for user, account in sorted(have - wanted):
                    record(Change(priority.pk, "remove-user-qos", f"{user}/{account} {name}"))
                    if write:
                        slurm.remove_user_qos(user, account, name)
            elif row is not None and priority.status in (Status.EXPIRED, Status.REFUSED):
                record(Change(priority.pk, "delete-qos", name))
                if write:
                    remove_from_slurm(priority)
                    if not priority.removed_at:
                        priority.removed_at = at
                        priority.save(update_fields=["removed_at"])
    if changes and write:
        audit(
            "priority.reconcile",
            actor="priorities",
            target="priorities",
            extra={"changes": [str(change) for change in changes]},
        )
    return changes
