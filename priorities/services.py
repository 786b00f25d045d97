"""GPU priority requests: who sees which, filing one, and the staff's decisions and changes.

Views and management commands call these functions; none reads a request object except to pass it
to the audit log. The rules are in priorities.policy, the sacctmgr side in priorities.qos, mail
in priorities.mail, starting and expiring on time in priorities.reconciler.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from priorities import bugzilla
from priorities.mail import notify_users, send_on_commit, staff_recipients
from priorities.models import (
    ARCHIVED_STATUSES,
    REMOVAL_PENDING,
    PriorityMember,
    PriorityMessage,
    PriorityRequest,
    Status,
    removal_overdue,
)
from priorities.policy import RequestData, users_errors, validate_qos_name, validate_request
from priorities.qos import automatic, remove_from_slurm
from slurm import sacctmgr
from userportal.audit import audit
from userportal.celery import enqueue


# --- who sees what ------------------------------------------------------------------------------
def requests_of(user: AbstractBaseUser | str) -> QuerySet[PriorityRequest]:
    """The requests ``user`` (a user, or a username) filed or shares (whoever they are)."""
    username = user if isinstance(user, str) else user.get_username()
    shared = PriorityMember.objects.filter(username=username).values("request_id")
    return (
        PriorityRequest.objects.select_related("requester")
        .prefetch_related("members", "messages")
        .filter(Q(requester__username=username) | Q(pk__in=shared))
    )


SORTS = {
    "created": "created",
    "start": "start",
    "end": "end",
    "account": "account",
    "gpu_type": "gpu_type",
    "gpu_count": "gpu_count",
    "status": "status",
    "requester": "requester__username",
}


def staff_search(params: dict[str, str]) -> QuerySet[PriorityRequest]:
    """The staff panel's list: search across every field, filters, archive toggle and sort."""
    queryset = PriorityRequest.objects.select_related("requester").prefetch_related("members", "messages")
    if params.get("archived") == "1":
        queryset = queryset.filter(status__in=ARCHIVED_STATUSES)
    elif params.get("archived") != "all":  # current: an expired QOS whose removal is not confirmed included
        queryset = queryset.exclude(Q(status__in=ARCHIVED_STATUSES) & ~REMOVAL_PENDING)
    text = (params.get("q") or "").strip()
    if text:
        match = (
            Q(account__icontains=text)
            | Q(gpu_type__icontains=text)
            | Q(justification__icontains=text)
            | Q(ticket__icontains=text)
            | Q(qos_name__icontains=text)
            | Q(status__icontains=text)
            | Q(refusal_reason__icontains=text)
            | Q(decided_by__icontains=text)
            | Q(requester__username__icontains=text)
            | Q(members__username__icontains=text)
            | Q(messages__text__icontains=text)
        )
        if text.isdigit():
            match |= Q(pk=int(text)) | Q(gpu_count=int(text)) | Q(duration_days=int(text))
        queryset = queryset.filter(match).distinct()
    for name in ("status", "gpu_type", "account"):
        if params.get(name):
            queryset = queryset.filter(**{name: params[name]})
    for name, lookup in (("date_from", "end__date__gte"), ("date_to", "start__date__lte")):
        value = params.get(name)
        if value:
            try:
                queryset = queryset.filter(**{lookup: datetime.strptime(value, "%Y-%m-%d").date()})  # noqa: DTZ007 - a date
            except ValueError:
                pass
    sort = params.get("sort") or "-created"
    key = sort.removeprefix("-")
    if key in SORTS:
        queryset = queryset.order_by(("-" if sort.startswith("-") else "") + SORTS[key], "-pk")
    return queryset


def staff_alerts(*, at: datetime | None = None) -> dict[str, int]:
    """What the staff panel's banners count: requests with a Slurm error, applied QOS past their end."""
    counts: dict[str, int] = PriorityRequest.objects.aggregate(
        sync_errors=Count("pk", filter=~Q(sync_error="")),
        removals_due=Count("pk", filter=removal_overdue(at or timezone.now())),
    )
    return counts


# --- user actions -------------------------------------------------------------------------------
def create_request(
    data: RequestData,
    *,
    user: AbstractBaseUser,
    cluster: str,
    request: HttpRequest | None = None,
    ticket_info: bugzilla.Ticket | None = None,
) -> PriorityRequest:
    errors = validate_request(data, username=user.get_username(), cluster=cluster)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        priority = PriorityRequest.objects.create(
            requester_id=user.pk,  # request.user is a lazy wrapper the router cannot inspect
            cluster=cluster,
            account=data.account,
            gpu_type=data.gpu_type,
            gpu_count=data.gpu_count,
            start=data.start,
            duration_days=data.duration_days,
            justification=data.justification.strip(),
            ticket=data.ticket.strip(),
        )
        if ticket_info is not None:  # checked in Bugzilla by the form (priorities.bugzilla)
            bugzilla.record(priority, ticket_info)
        for name in data.users:
            if name != user.get_username():
                PriorityMember.objects.create(request=priority, username=name)
        audit(
            "priority.request",
            request=request,
            actor=user.get_username(),
            target=f"priority:{priority.pk}",
            extra={"account": data.account, "gpu": f"{data.gpu_count}x{data.gpu_type}", "days": data.duration_days},
        )
        send_on_commit("new_request", priority, staff_recipients())
    return priority


# --- staff decisions ----------------------------------------------------------------------------
def accept(
    priority: PriorityRequest, *, qos_name: str, actor: str, request: HttpRequest | None = None
) -> PriorityRequest:
    if priority.status != Status.PENDING:
        raise ValidationError({"qos_name": [_("Only a pending request can be accepted.")]})
    errors = validate_qos_name(qos_name, exclude_pk=priority.pk)
    if errors:
        raise ValidationError({"qos_name": errors})
    with transaction.atomic():
        priority.qos_name = qos_name
        priority.status = Status.ACCEPTED
        priority.decided_by = actor
        priority.decided_at = timezone.now()
        priority.save()
        audit(
            "priority.accept", request=request, actor=actor, target=f"priority:{priority.pk}", extra={"qos": qos_name}
        )
        notify_users("accepted", priority)
        if automatic():
            _start_if_due(priority)
    return priority


def _start_if_due(priority: PriorityRequest) -> None:
    """Start an accepted priority whose start has come; a later start waits for the reconciler.

    No task is queued for a priority's start or end: Redis hands a task with an ETA days ahead back
    to another worker after its visibility timeout (an hour), again and again. The beat task
    priorities.reconcile starts and expires what is due instead, so a priority starts and ends at
    most one PRIORITIES_RECONCILE_MINUTES late.
    """
    if priority.start <= timezone.now():
        transaction.on_commit(partial(enqueue, "priorities.activate", priority_id=priority.pk))


def refuse(
    priority: PriorityRequest, *, reason: str, actor: str, request: HttpRequest | None = None
) -> PriorityRequest:
    if priority.status != Status.PENDING:
        raise ValidationError({"reason": [_("Only a pending request can be refused.")]})
    if not reason.strip():
        raise ValidationError({"reason": [_("Give the reason for the refusal.")]})
    with transaction.atomic():
        priority.status = Status.REFUSED
        priority.refusal_reason = reason.strip()
        priority.decided_by = actor
        priority.decided_at = timezone.now()
        priority.save()
        audit(
            "priority.refuse", request=request, actor=actor, target=f"priority:{priority.pk}", extra={"reason": reason}
        )
        notify_users("refused", priority)
    return priority


def add_message(
    priority: PriorityRequest, *, text: str, actor: str, request: HttpRequest | None = None
) -> PriorityMessage:
    if not text.strip():
        raise ValidationError({"text": [_("The message is empty.")]})
    with transaction.atomic():
        message = PriorityMessage.objects.create(request=priority, author=actor, text=text.strip())
        audit("priority.message", request=request, actor=actor, target=f"priority:{priority.pk}", extra={"text": text})
        notify_users("message", priority, message=message)
    return message


def add_users(
    priority: PriorityRequest, *, usernames: Sequence[str], actor: str, request: HttpRequest | None = None
) -> list[str]:
    """Share the priority with more users (given the QOS at once when it is active, in automatic mode)."""
    errors = users_errors(usernames, priority.account, priority.cluster)
    if errors:
        raise ValidationError({"users": errors})
    current = set(priority.usernames())
    added = [name for name in usernames if name not in current]
    with transaction.atomic():
        for name in added:
            PriorityMember.objects.create(request=priority, username=name)
        if added:
            audit(
                "priority.add_users",
                request=request,
                actor=actor,
                target=f"priority:{priority.pk}",
                extra={"users": added},
            )
    if added and automatic() and priority.status == Status.ACTIVE and priority.qos_name:
        slurm = sacctmgr.get_client()
        for name in added:
            slurm.add_user_qos(name, priority.account, priority.qos_name)
    return added


def remove_user(priority: PriorityRequest, *, username: str, actor: str, request: HttpRequest | None = None) -> bool:
    deleted, _rows = PriorityMember.objects.filter(request=priority, username=username).delete()
    if not deleted:
        return False
    audit(
        "priority.remove_user", request=request, actor=actor, target=f"priority:{priority.pk}", extra={"user": username}
    )
    if automatic() and priority.status == Status.ACTIVE and priority.qos_name:
        sacctmgr.get_client().remove_user_qos(username, priority.account, priority.qos_name)
    return True


def mark_applied(priority: PriorityRequest, *, actor: str, request: HttpRequest | None = None) -> PriorityRequest:
    """Manual mode: staff ran the commands. The request becomes active (and the users are told)."""
    if priority.status != Status.ACCEPTED:
        raise ValidationError(_("Only an accepted request can be marked applied."))
    with transaction.atomic():
        priority.status = Status.ACTIVE
        priority.applied_at = timezone.now()
        priority.start_notified_at = priority.applied_at
        priority.save()
        audit("priority.mark_applied", request=request, actor=actor, target=f"priority:{priority.pk}")
        notify_users("started", priority)
    return priority


def mark_removed(priority: PriorityRequest, *, actor: str, request: HttpRequest | None = None) -> PriorityRequest:
    """Manual mode: staff ran the removal commands."""
    with transaction.atomic():
        priority.removed_at = timezone.now()
        if priority.status in (Status.ACCEPTED, Status.ACTIVE):
            priority.status = Status.EXPIRED
        priority.save()
        audit("priority.mark_removed", request=request, actor=actor, target=f"priority:{priority.pk}")
    return priority


def delete_request(priority: PriorityRequest, *, actor: str, request: HttpRequest | None = None) -> None:
    """Delete a request; in automatic mode its QOS goes first, so nothing is left in Slurm."""
    if automatic() and priority.qos_name and priority.applied_at and not priority.removed_at:
        remove_from_slurm(priority)
    pk = priority.pk
    with transaction.atomic():
        audit(
            "priority.delete", request=request, actor=actor, target=f"priority:{pk}", extra={"qos": priority.qos_name}
        )
        priority.delete()
