"""Walltime extension requests: asking, the staff's decisions, Slurm's side, and expiry.

Slurm is asked through slurm.scontrol (slurm.commands underneath): the job as slurmctld knows it
now, its partition's limits, the reservations; accepting queues ``extensions.apply``, which runs
``scontrol update JobId=<id> TimeLimit=<new>`` as the Slurm operator account (Celery's worker:
the web server's user is rarely a Slurm operator). Every step is audited.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from extensions.mail import notify_requester, send_on_commit, staff_recipients
from extensions.models import OPEN_STATUSES, ExtensionRequest, Status, open_slot
from extensions.policy import Policy, array_message, auto_acceptable, validate
from slurm import scontrol
from slurm.commands import SlurmCommandError
from userportal.audit import audit
from userportal.celery import enqueue

logger = logging.getLogger(__name__)

AUTOMATIC_ACTOR = "portal (automatic)"


def requests_of(user: AbstractBaseUser) -> QuerySet[ExtensionRequest]:
    return ExtensionRequest.objects.filter(requester_id=user.pk)


def staff_list(status: str = "") -> QuerySet[ExtensionRequest]:
    """The staff panel: open requests first (a status filters), newest first."""
    rows = ExtensionRequest.objects.select_related("requester")
    if status in Status.values:
        return rows.filter(status=status)
    return rows.filter(status__in=OPEN_STATUSES) if status == "" else rows


def operator() -> str | None:
    """Whom scontrol update runs as: EXTENSIONS_SLURM_OPERATOR through runuser when the worker is root."""
    name = str(settings.EXTENSIONS_SLURM_OPERATOR or "")
    return name if name and os.geteuid() == 0 else None


# --- the user asks ------------------------------------------------------------------------------
def create_request(
    job_id: str,
    *,
    hours: int,
    reason: str,
    user: AbstractBaseUser,
    cluster: str,
    request: HttpRequest | None = None,
) -> ExtensionRequest:
    """File a request; one within EXTENSIONS_AUTO_ACCEPT_HOURS whose nodes no reservation wants is accepted at once.

    Raises ValidationError (by form field) when the policy refuses it, SlurmCommandError when
    slurmctld does not answer.
    """
    policy = Policy.from_settings()
    username = user.get_username()
    job = _one_job(job_id, cluster)
    errors = validate(job, username=username, hours=hours, cluster=cluster, policy=policy)
    if errors:
        raise ValidationError(errors)
    assert job is not None
    automatic = _auto_acceptable(job, hours, policy, cluster)
    try:
        return _file(job, hours=hours, reason=reason, user=user, cluster=cluster, automatic=automatic, request=request)
    except IntegrityError as exc:  # another request for the job was filed meanwhile (the one-open constraint)
        raise ValidationError({"__all__": [_("This job already has a request waiting for a decision.")]}) from exc


def _one_job(job_id: str, cluster: str) -> scontrol.JobInfo | None:
    try:
        return scontrol.job(job_id, cluster=cluster)
    except scontrol.NotOneJob as exc:
        raise ValidationError({"__all__": [array_message()]}) from exc


def _file(
    job: scontrol.JobInfo,
    *,
    hours: int,
    reason: str,
    user: AbstractBaseUser,
    cluster: str,
    automatic: bool,
    request: HttpRequest | None,
) -> ExtensionRequest:
    username = user.get_username()
    with transaction.atomic():
        extension = ExtensionRequest.objects.create(
            requester_id=user.pk,  # request.user is a lazy wrapper the router cannot inspect
            cluster=cluster,
            job_id=job.job_id,
            account=job.account,
            partition=job.partition,
            hours=hours,
            reason=reason.strip(),
            limit_before=job.time_limit,
        )
        audit(
            "extension.request",
            request=request,
            actor=username,
            target=f"extension:{extension.pk}",
            extra={"job": job.job_id, "hours": hours, "limit": job.time_limit, "automatic": automatic},
        )
        if automatic:
            _accept(extension, job, actor=AUTOMATIC_ACTOR, message="", automatic=True, request=request)
        else:
            path = reverse("extensions:staff-detail", kwargs={"extension_id": extension.pk})
            url = request.build_absolute_uri(path) if request is not None else path  # a mail needs the host
            send_on_commit("new_request", extension, staff_recipients(), url=url)
    return extension


def _auto_acceptable(job: scontrol.JobInfo, hours: int, policy: Policy, cluster: str) -> bool:
    if not policy.auto_accept_hours or hours > policy.auto_accept_hours:
        return False
    try:
        partition = scontrol.partition(job.partition, cluster=cluster) if job.partition else None
        reservations = scontrol.reservations(cluster=cluster)
    except SlurmCommandError as exc:  # without the reservations nothing is accepted alone
        logger.warning("extension for job %s: no automatic acceptance: %s", job.job_id, exc)
        return False
    return auto_acceptable(
        job, hours=hours, policy=policy, partition=partition, reservations=reservations, now=timezone.now()
    )


# --- staff decide -------------------------------------------------------------------------------
def accept(
    extension: ExtensionRequest, *, actor: str, message: str = "", request: HttpRequest | None = None
) -> ExtensionRequest:
    """Accept a pending request: the new limit is the job's limit now plus the hours; Slurm is updated by a task."""
    if extension.status != Status.PENDING:
        raise ValidationError(_("Only a pending request can be accepted."))
    job = _one_job(extension.job_id, extension.cluster)
    if job is None or not job.extendable:
        expire(extension, request=request)
        raise ValidationError(_("The job has ended: the request expired."))
    if job.time_limit is None:
        raise ValidationError(_("This job has no time limit to extend."))
    with transaction.atomic():
        _accept(extension, job, actor=actor, message=message, automatic=False, request=request)
    return extension


def _accept(
    extension: ExtensionRequest,
    job: scontrol.JobInfo,
    *,
    actor: str,
    message: str,
    automatic: bool,
    request: HttpRequest | None,
) -> None:
    assert job.time_limit is not None
    new_limit = job.time_limit + extension.hours * 60
    _decide(
        extension,
        status=Status.ACCEPTED,
        new_limit=new_limit,
        automatic=automatic,
        staff_message=message.strip(),
        decided_by=actor,
        decided_at=timezone.now(),
    )
    audit(
        "extension.accept",
        request=request,
        actor=actor,
        target=f"extension:{extension.pk}",
        extra={"job": extension.job_id, "new_limit": new_limit, "automatic": automatic},
    )
    notify_requester("accepted", extension, new_limit=scontrol.format_minutes(new_limit))
    transaction.on_commit(partial(enqueue, "extensions.apply", extension_id=extension.pk))


def _decide(extension: ExtensionRequest, **values: Any) -> None:
    """Move a pending request to its decision, or raise ValidationError when another decision came first.

    One conditional UPDATE (WHERE status = pending): of two staff deciding at once, or a
    double-click, one changes the row and goes on to mail, audit and queue; the other finds
    nothing pending.
    """
    values["open_slot"] = open_slot(values["status"])
    won = ExtensionRequest.objects.filter(pk=extension.pk, status=Status.PENDING).update(**values)
    if not won:
        extension.refresh_from_db()
        raise ValidationError(
            _("Only a pending request can be accepted.")
            if values["status"] == Status.ACCEPTED
            else _("Only a pending request can be refused.")
        )
    for name, value in values.items():
        setattr(extension, name, value)


def refuse(
    extension: ExtensionRequest, *, actor: str, message: str, request: HttpRequest | None = None
) -> ExtensionRequest:
    if extension.status != Status.PENDING:
        raise ValidationError(_("Only a pending request can be refused."))
    if not message.strip():
        raise ValidationError({"message": [_("Tell the user why.")]})
    with transaction.atomic():
        _decide(
            extension,
            status=Status.REFUSED,
            staff_message=message.strip(),
            decided_by=actor,
            decided_at=timezone.now(),
        )
        audit(
            "extension.refuse",
            request=request,
            actor=actor,
            target=f"extension:{extension.pk}",
            extra={"job": extension.job_id, "message": message},
        )
        notify_requester("refused", extension)
    return extension


def retry(extension: ExtensionRequest, *, actor: str, request: HttpRequest | None = None) -> None:
    """Queue scontrol update again for an accepted request Slurm refused (the job still running)."""
    if extension.status != Status.ACCEPTED:
        raise ValidationError(_("Only an accepted request waiting for Slurm can be retried."))
    audit("extension.retry", request=request, actor=actor, target=f"extension:{extension.pk}")
    transaction.on_commit(partial(enqueue, "extensions.apply", extension_id=extension.pk))


# --- Slurm's side (Celery) ----------------------------------------------------------------------
def apply(extension: ExtensionRequest) -> bool:
    """Run scontrol update for an accepted request; True once Slurm has the new limit.

    Idempotent: the new limit was fixed at acceptance, so a retry sets the same value. A failure
    is kept on the request (the staff panel shows it, with a retry button) and audited.
    """
    if extension.status != Status.ACCEPTED or not extension.new_limit:
        return False
    try:
        scontrol.update_time_limit(extension.job_id, extension.new_limit, as_user=operator(), cluster=extension.cluster)
    except SlurmCommandError as exc:
        detail = (exc.stderr or str(exc)).strip()[:2000]
        extension.error = detail
        ExtensionRequest.objects.filter(pk=extension.pk, status=Status.ACCEPTED).update(error=detail)
        audit(
            "extension.apply_failed",
            actor=AUTOMATIC_ACTOR,
            target=f"extension:{extension.pk}",
            status="failed",
            extra={"job": extension.job_id, "error": detail[:500]},
        )
        return False
    values = {"status": Status.APPLIED, "applied_at": timezone.now(), "error": "", "open_slot": None}
    if not ExtensionRequest.objects.filter(pk=extension.pk, status=Status.ACCEPTED).update(**values):
        return False  # another run of the task applied it (or the request expired) meanwhile
    for name, value in values.items():
        setattr(extension, name, value)
    audit(
        "extension.applied",
        actor=AUTOMATIC_ACTOR,
        target=f"extension:{extension.pk}",
        extra={"job": extension.job_id, "time_limit": scontrol.format_minutes(extension.new_limit)},
    )
    return True


def expire(extension: ExtensionRequest, *, request: HttpRequest | None = None) -> None:
    """An open request whose job ended expires (nothing when it was decided or applied meanwhile)."""
    values = {"status": Status.EXPIRED, "open_slot": None}
    if not ExtensionRequest.objects.filter(pk=extension.pk, status__in=OPEN_STATUSES).update(**values):
        extension.refresh_from_db()
        return
    extension.status = Status.EXPIRED
    extension.open_slot = None
    audit(
        "extension.expire",
        request=request,
        actor=AUTOMATIC_ACTOR,
        target=f"extension:{extension.pk}",
        extra={"job": extension.job_id},
    )


def expire_ended() -> list[int]:
    """Beat task: open requests whose job ended (or slurmctld forgot it) expire. Their ids."""
    expired = []
    silent: set[str] = set()  # clusters whose slurmctld did not answer this time
    for extension in ExtensionRequest.objects.filter(status__in=OPEN_STATUSES).order_by("pk"):
        if extension.cluster in silent:
            continue
        try:
            job = scontrol.job(extension.job_id, cluster=extension.cluster)
        except scontrol.NotOneJob:
            continue  # not a name the portal files now (an array's own id): left to the staff
        except SlurmCommandError as exc:
            logger.warning("extensions.expire: slurmctld did not answer: %s", exc)
            silent.add(extension.cluster)  # next time; one failure says the cluster's others would fail too
            continue
        if job is None or job.ended:
            expire(extension)
            expired.append(extension.pk)
    return expired
