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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from priorities.mail import notify_users, send_on_commit, staff_recipients
from priorities.models import OPEN_STATUSES, PriorityRequest, Status
from priorities.qos import apply_to_slurm, automatic, qos_spec, remove_from_slurm
from slurm import sacctmgr
from slurm.decoders import parse_delta_qos, parse_qos_list, parse_tres
from slurm.models import Qos, Tres, cluster_models
from slurm.sacctmgr import QosSpec
from userportal.audit import audit

logger = logging.getLogger(__name__)


def activate(priority: PriorityRequest, *, at: datetime | None = None) -> bool:
    """Automatic mode: at the start, create the QOS and give it to the users. Idempotent.

    A user sacctmgr refuses does not hold back the others: the priority becomes active, then
    SacctmgrError names who lacks the QOS (the reconciler records it and retries them as drift).
    """
    at = at or timezone.now()
    if priority.status != Status.ACCEPTED or not (priority.start <= at < priority.end) or not automatic():
        return False
    failures = apply_to_slurm(priority)
    with transaction.atomic():
        priority.status = Status.ACTIVE
        priority.applied_at = at
        priority.start_notified_at = at
        priority.save()
        audit(
            "priority.activate", actor="priorities", target=f"priority:{priority.pk}", extra={"qos": priority.qos_name}
        )
        notify_users("started", priority)
    if failures:
        raise sacctmgr.SacctmgrError("; ".join(failures))
    return True


def expire(priority: PriorityRequest, *, at: datetime | None = None) -> bool:
    """At the end: archive the request and remove the QOS (automatic mode). Idempotent.

    In manual mode an applied QOS stays "removal pending" and staff get the removal commands by
    mail; the request stays in the staff panel's default view until staff mark it removed or
    slurmdbd no longer lists the QOS (the reconciler's drift check confirms it).

    The request expires even when sacctmgr fails: removed_at stays empty, the reconciler deletes
    the QOS as drift on its next runs, and the SacctmgrError is raised once the expiry is saved.
    """
    at = at or timezone.now()
    if priority.end > at or priority.status not in (Status.ACCEPTED, Status.ACTIVE, Status.PENDING):
        return False
    was_pending = priority.status == Status.PENDING
    removed = False
    error: sacctmgr.SacctmgrError | None = None
    if automatic() and priority.qos_name and not was_pending:
        try:
            remove_from_slurm(priority)
            removed = True
        except sacctmgr.SacctmgrError as exc:
            error = exc
    with transaction.atomic():
        priority.status = Status.EXPIRED
        if removed:
            priority.removed_at = at
        priority.save()
        audit("priority.expire", actor="priorities", target=f"priority:{priority.pk}", extra={"qos": priority.qos_name})
        if priority.removal_pending and not automatic():
            send_on_commit("removal_due", priority, staff_recipients())
    if error is not None:
        raise error
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


@dataclass
class _Run:
    """One reconcile run: when it runs, what it changed, and each request's errors."""

    at: datetime
    dry_run: bool
    progress: Callable[[Change], None] | None
    changes: list[Change] = field(default_factory=list)
    errors: dict[int, list[str]] = field(default_factory=dict)

    @property
    def write(self) -> bool:
        return automatic() and not self.dry_run

    def record(self, change: Change) -> None:
        self.changes.append(change)
        logger.info("reconcile: %s", change)
        if self.progress:
            self.progress(change)

    def attempt(self, priority: PriorityRequest, action: str, step: Callable[[], object]) -> None:
        """Run one request's step: its error is recorded against that request and stops nothing else."""
        try:
            step()
        except Exception as exc:  # one request's failure (sacctmgr, bad data) must not stop the others
            logger.warning("reconcile: priority %s: %s failed: %s", priority.pk, action, exc, exc_info=True)
            self.errors.setdefault(priority.pk, []).append(str(exc))
            self.record(Change(priority.pk, "failed", f"{action}: {exc}"))


def reconcile(
    *,
    at: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Expire what has ended, start what is due, warn of approaching ends, and repair drift.

    The database is the source of truth. In manual mode, or with ``dry_run``, Slurm is never
    changed: the drift is only reported (staff run the commands shown in the panel). Expiries
    come first and each request's steps run on their own: a request sacctmgr refuses gets the
    error recorded (sync_error, a mail to staff when it is new) and holds back no other.
    """
    run = _Run(at or timezone.now(), dry_run, progress)
    _time_transitions(run)
    _repair_drift(run)
    if not dry_run:
        _store_errors(run)
    if run.changes and run.write:
        audit(
            "priority.reconcile",
            actor="priorities",
            target="priorities",
            extra={"changes": [str(change) for change in run.changes]},
        )
    return run.changes


def _time_transitions(run: _Run) -> None:
    at = run.at
    for priority in PriorityRequest.objects.filter(status__in=OPEN_STATUSES, end__lte=at):
        run.record(Change(priority.pk, "expire", priority.qos_name or ""))
        if not run.dry_run:
            run.attempt(priority, "expire", partial(expire, priority, at=at))
    if automatic():
        for priority in PriorityRequest.objects.filter(status=Status.ACCEPTED, start__lte=at, end__gt=at):
            run.record(Change(priority.pk, "activate", priority.qos_name or ""))
            if not run.dry_run:
                run.attempt(priority, "activate", partial(activate, priority, at=at))
    warn_after = at + timedelta(hours=settings.PRIORITIES_END_WARNING_HOURS)
    for priority in PriorityRequest.objects.filter(
        status=Status.ACTIVE, end__gt=at, end__lte=warn_after, end_warned_at__isnull=True
    ):
        run.record(Change(priority.pk, "warn-end", ""))
        if not run.dry_run:
            run.attempt(priority, "warn-end", partial(_warn_end, priority, at))


def _warn_end(priority: PriorityRequest, at: datetime) -> None:
    with transaction.atomic():
        priority.end_warned_at = at
        priority.save(update_fields=["end_warned_at"])
        notify_users("ending", priority)


def _repair_drift(run: _Run) -> None:
    """Compare what should exist with what slurmdbd has, per cluster, and repair it (automatic mode)."""
    managed = PriorityRequest.objects.exclude(qos_name=None).exclude(qos_name="").prefetch_related("members")
    managed = managed.select_related("requester")
    by_cluster: dict[str, list[PriorityRequest]] = {}
    for priority in managed:
        if priority.pk not in run.errors:  # failed a step already: retried on the next run
            by_cluster.setdefault(priority.cluster, []).append(priority)
    catalog = Tres.catalog() if by_cluster else None
    slurm = sacctmgr.get_client()  # built, never run, in manual mode and dry runs
    for cluster, priorities in by_cluster.items():
        state = SlurmState.read((p.qos_name for p in priorities if p.qos_name), cluster)
        for priority in priorities:
            gpu_id = catalog.id_of("gres", f"gpu:{priority.gpu_type}") if catalog else None
            run.attempt(priority, "repair", partial(_repair, run, priority, state, gpu_id, slurm))


def _repair(
    run: _Run, priority: PriorityRequest, state: SlurmState, gpu_id: int | None, slurm: sacctmgr.SacctmgrClient
) -> None:
    assert priority.qos_name
    name = priority.qos_name
    at, write = run.at, run.write
    should_exist = priority.status == Status.ACTIVE and priority.start <= at < priority.end and priority.applied_at
    row = state.qos.get(name)
    if should_exist:
        spec = qos_spec(priority)
        if row is None:
            run.record(Change(priority.pk, "create-qos", name))
            if write:
                slurm.add_qos(spec)
        elif not _qos_matches(row, spec, gpu_id):
            run.record(Change(priority.pk, "fix-qos-limits", name))
            if write:
                slurm.add_qos(spec)
        wanted = {(u, priority.account) for u in priority.usernames()}
        have = state.users_of.get(name, set())
        failures = []
        for user, account in sorted(wanted - have):
            run.record(Change(priority.pk, "add-user-qos", f"{user}/{account} {name}"))
            if write:
                try:
                    slurm.add_user_qos(user, account, name)
                except sacctmgr.SacctmgrError as exc:  # the other users still get it
                    failures.append(str(exc))
        for user, account in sorted(have - wanted):
            run.record(Change(priority.pk, "remove-user-qos", f"{user}/{account} {name}"))
            if write:
                slurm.remove_user_qos(user, account, name)
        if failures:
            raise sacctmgr.SacctmgrError("; ".join(failures))
    elif row is not None and priority.status in (Status.EXPIRED, Status.REFUSED):
        run.record(Change(priority.pk, "delete-qos", name))
        if write:
            remove_from_slurm(priority)
            if not priority.removed_at:
                priority.removed_at = at
                priority.save(update_fields=["removed_at"])
    elif row is None and priority.removal_pending:
        # slurmdbd no longer lists it (staff ran the removal, or an earlier deletion went through).
        run.record(Change(priority.pk, "removal-confirmed", name))
        if not run.dry_run:
            priority.removed_at = at
            priority.save(update_fields=["removed_at"])


def _store_errors(run: _Run) -> None:
    """Record each request's errors of this run, mail staff about new ones, clear the ones that are gone."""
    PriorityRequest.objects.exclude(sync_error="").exclude(pk__in=run.errors).update(sync_error="", sync_error_at=None)
    for priority in PriorityRequest.objects.filter(pk__in=run.errors).select_related("requester"):
        text = "\n".join(run.errors[priority.pk])
        if priority.sync_error == text:
            continue  # staff were told already
        with transaction.atomic():
            priority.sync_error = text
            priority.sync_error_at = run.at
            priority.save(update_fields=["sync_error", "sync_error_at"])
            send_on_commit("sync_failed", priority, staff_recipients(), error=text)
