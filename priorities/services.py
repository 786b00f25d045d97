"""GPU priority requests: policy, decisions, the sacctmgr commands, applying, expiring and reconciling.

Views, tasks and management commands call these functions; none of them reads a request object
except to pass it to the audit log. The portal's database says what Slurm should have; Slurm's
accounting database (read-only, through slurm.models) says what it has; sacctmgr changes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from priorities.models import (
    ARCHIVED_STATUSES,
    OPEN_STATUSES,
    PriorityAdmin,
    PriorityMember,
    PriorityMessage,
    PriorityRequest,
    Status,
    compute_end,
)
from slurm import sacctmgr
from slurm.decoders import parse_delta_qos, parse_qos_list, parse_tres
from slurm.models import Qos, Tres, cluster_models
from slurm.sacctmgr import QosSpec, SacctmgrClient
from slurm.visibility import accounts_of
from userportal.audit import audit
from userportal.celery import enqueue

logger = logging.getLogger(__name__)

TICKET = re.compile(r"(?:#?\d{1,10}|https?://\S{1,190})")
# How far in the past a start may be (the time it takes to fill in the form).
START_SLACK = timedelta(minutes=15)


def now() -> datetime:
    """The clock (tests patch it, or pass ``now=`` to the functions that take it)."""
    return timezone.now()


# --- policy ------------------------------------------------------------------------------------
def _per_type(items: Iterable[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for item in items:
        key, _sep, value = item.partition("=")
        limits[key.strip()] = int(value)
    return limits


@dataclass(frozen=True)
class Policy:
    max_days: int
    max_gpus_per_request: dict[str, int]
    max_gpus_per_account: dict[str, int]
    max_open_per_account: int

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            max_days=settings.PRIORITIES_MAX_DAYS,
            max_gpus_per_request=_per_type(settings.PRIORITIES_MAX_GPUS_PER_REQUEST),
            max_gpus_per_account=_per_type(settings.PRIORITIES_MAX_GPUS_PER_ACCOUNT),
            max_open_per_account=settings.PRIORITIES_MAX_ACTIVE_PER_ACCOUNT,
        )

    def request_limit(self, gpu_type: str) -> int | None:
        return self.max_gpus_per_request.get(gpu_type, self.max_gpus_per_request.get("*"))

    def account_limit(self, gpu_type: str) -> int | None:
        return self.max_gpus_per_account.get(gpu_type, self.max_gpus_per_account.get("*"))

    def limits_for(self, gpu_types: Iterable[str]) -> dict[str, dict[str, int | None]]:
        """Per GPU type, for the policy page and the form's script."""
        return {t: {"request": self.request_limit(t), "account": self.account_limit(t)} for t in gpu_types}


# --- what the cluster has ---------------------------------------------------------------------
def gpu_types(cluster: str | None = None) -> list[str]:
    """GPU models of the cluster's TRES (``gres/gpu:<type>`` rows of tres_table), sorted."""
    catalog = Tres.catalog()
    return sorted(set(catalog.gpu_types.values()))


def cluster_gpus(cluster: str) -> dict[str, int]:
    """GPUs per type: the setting, else the cluster's latest TRES registration in the event table."""
    configured = _per_type(settings.PRIORITIES_CLUSTER_GPUS)
    if configured:
        return configured
    event = cluster_models(cluster).event
    row = event.objects.filter(node_name="", time_end=0).order_by("-time_start").values_list("tres", flat=True).first()
    if not row:
        return {}
    catalog = Tres.catalog()
    return catalog.gpus_by_type(parse_tres(row))


# --- validation --------------------------------------------------------------------------------
@dataclass
class RequestData:
    account: str
    gpu_type: str
    gpu_count: int
    start: datetime
    duration_days: int
    justification: str
    ticket: str
    users: list[str] = field(default_factory=list)


def parse_usernames(text: str) -> list[str]:
    """``"bob, carol\\ndave"`` to ``["bob", "carol", "dave"]`` (order kept, duplicates dropped)."""
    names: list[str] = []
    for part in re.split(r"[\s,;]+", text or ""):
        if part and part not in names:
            names.append(part)
    return names


def _members_without_association(usernames: Sequence[str], account: str, cluster: str) -> list[str]:
    assoc = cluster_models(cluster).assoc
    found = set(assoc.objects.filter(user__in=list(usernames), acct=account, deleted=0).values_list("user", flat=True))
    return [name for name in usernames if name not in found]


def open_requests(account: str, cluster: str, *, exclude_pk: int | None = None) -> QuerySet[PriorityRequest]:
    queryset = PriorityRequest.objects.filter(account=account, cluster=cluster, status__in=OPEN_STATUSES)
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset


def validate_request(
    data: RequestData,
    *,
    username: str,
    cluster: str,
    policy: Policy | None = None,
    at: datetime | None = None,
    exclude_pk: int | None = None,
) -> dict[str, list[str]]:
    """Every policy violation, by form field. Empty when the request may be filed."""
    policy = policy or Policy.from_settings()
    at = at or now()
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if data.account not in accounts_of(username, cluster):
        add("account", _("You have no association with the Slurm account %(account)s.") % {"account": data.account})
    types = gpu_types(cluster)
    if data.gpu_type not in types:
        add("gpu_type", _("The cluster has no GPU type %(type)s.") % {"type": data.gpu_type})
    if data.gpu_count < 1:
        add("gpu_count", _("Ask for at least one GPU."))
    limit = policy.request_limit(data.gpu_type)
    if limit is not None and data.gpu_count > limit:
        add(
            "gpu_count",
            _("At most %(limit)d %(type)s GPUs per request.") % {"limit": limit, "type": data.gpu_type},
        )
    if data.duration_days < 1:
        add("duration_days", _("The priority lasts at least one day."))
    elif data.duration_days > policy.max_days:
        add("duration_days", _("A priority lasts at most %(days)d days.") % {"days": policy.max_days})
    if data.start < at - START_SLACK:
        add("start", _("The start cannot be in the past."))
    if not data.justification.strip():
        add("justification", _("Explain what the priority is for."))
    if not TICKET.fullmatch(data.ticket.strip()):
        add("ticket", _("Give the Bugzilla ticket number (e.g. 12345) or its link, with the PI's approval recorded."))

    bad_names = [name for name in data.users if not sacctmgr.ENTITY_NAME.fullmatch(name)]
    if bad_names:
        add("users", _("Not valid user names: %(names)s.") % {"names": ", ".join(bad_names)})
    elif data.users and "account" not in errors:
        missing = _members_without_association(data.users, data.account, cluster)
        if missing:
            add(
                "users",
                _("These users have no association with %(account)s: %(names)s.")
                % {"account": data.account, "names": ", ".join(missing)},
            )

    if "account" not in errors:
        others = open_requests(data.account, cluster, exclude_pk=exclude_pk)
        if others.count() >= policy.max_open_per_account:
            add(
                "account",
                _("The account %(account)s already has %(limit)d open requests, the most allowed.")
                % {"account": data.account, "limit": policy.max_open_per_account},
            )
        account_limit = policy.account_limit(data.gpu_type)
        if account_limit is not None and data.duration_days >= 1 and "gpu_type" not in errors:
            end = compute_end(data.start, data.duration_days)
            held = (
                others.filter(gpu_type=data.gpu_type, start__lt=end, end__gt=data.start).aggregate(n=Sum("gpu_count"))[
                    "n"
                ]
                or 0
            )
            if held + data.gpu_count > account_limit:
                add(
                    "gpu_count",
                    _(
                        "The account may hold at most %(limit)d %(type)s GPUs at once; its other requests "
                        "in that period hold %(held)d."
                    )
                    % {"limit": account_limit, "type": data.gpu_type, "held": held},
                )
    return errors


# --- who sees what ------------------------------------------------------------------------------
def requests_visible_to(user: Any) -> QuerySet[PriorityRequest]:
    """Staff see every request; a user those they filed or share."""
    if user.is_staff:
        return PriorityRequest.objects.select_related("requester").prefetch_related("members", "messages")
    return requests_of(user)


def requests_of(user: Any) -> QuerySet[PriorityRequest]:
    """The requests ``user`` filed or shares (whoever they are)."""
    shared = PriorityMember.objects.filter(username=user.get_username()).values("request_id")
    return (
        PriorityRequest.objects.select_related("requester")
        .prefetch_related("members", "messages")
        .filter(Q(requester=user) | Q(pk__in=shared))
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
    elif params.get("archived") != "all":
        queryset = queryset.exclude(status__in=ARCHIVED_STATUSES)
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


# --- commands -----------------------------------------------------------------------------------
def qos_spec(priority: PriorityRequest) -> QosSpec:
    if not priority.qos_name:
        raise ValueError(f"priority {priority.pk} has no QOS name yet")
    return QosSpec(
        name=priority.qos_name,
        gpu_type=priority.gpu_type,
        gpu_count=priority.gpu_count,
        days=priority.duration_days,
        priority=settings.PRIORITIES_QOS_PRIORITY,
    )


def commands(priority: PriorityRequest) -> dict[str, list[str]]:
    """The sacctmgr commands staff copy: creating the QOS and adding it to every user; and the removal."""
    if not priority.qos_name:
        return {"apply": [], "remove": []}
    spec = qos_spec(priority)
    users = priority.usernames()
    return {
        "apply": [sacctmgr.display(sacctmgr.add_qos_args(spec))]
        + [
            sacctmgr.display(sacctmgr.user_qos_args(u, priority.account, spec.name, add=True))
            for u in users
            if sacctmgr.ENTITY_NAME.fullmatch(u)
        ],
        "remove": [
            sacctmgr.display(sacctmgr.user_qos_args(u, priority.account, spec.name, add=False))
            for u in users
            if sacctmgr.ENTITY_NAME.fullmatch(u)
        ]
        + [sacctmgr.display(sacctmgr.delete_qos_args(spec.name))],
    }


def automatic() -> bool:
    return bool(settings.PRIORITIES_APPLY_MODE == "automatic")


def client() -> SacctmgrClient:
    return sacctmgr.get_client()


# --- mail ---------------------------------------------------------------------------------------
def _emails_of(usernames: Iterable[str]) -> list[str]:
    User = get_user_model()
    return sorted(
        set(User.objects.filter(username__in=list(usernames)).exclude(email="").values_list("email", flat=True))
    )


def staff_recipients() -> list[str]:
    admins = list(PriorityAdmin.objects.values_list("email", flat=True))
    if admins:
        return sorted(set(admins))
    User = get_user_model()
    return sorted(
        set(User.objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True))
    )


def _mail(kind: str, priority: PriorityRequest, recipients: list[str], **context: Any) -> None:
    """Render now, send once the transaction commits (a rolled-back change sends nothing)."""
    if not recipients:
        logger.info("priority %s: no address for the %s mail", priority.pk, kind)
        return
    context = {
        "priority": priority,
        "site_name": settings.PORTAL_SITE_NAME,
        "commands": commands(priority),
        "ticket_url": ticket_url(priority.ticket),
        **context,
    }
    subject = " ".join(render_to_string(f"priorities/email/{kind}_subject.txt", context).split())
    body = render_to_string(f"priorities/email/{kind}.txt", context)
    transaction.on_commit(
        partial(send_mail, subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    )


def notify_users(kind: str, priority: PriorityRequest, **context: Any) -> None:
    _mail(kind, priority, _emails_of(priority.usernames()), **context)


def ticket_url(ticket: str) -> str:
    ticket = (ticket or "").strip()
    if ticket.startswith(("http://", "https://")):
        return ticket
    template = settings.PRIORITIES_TICKET_URL
    return template.format(ticket=ticket.lstrip("#")) if template and ticket else ""


# --- user actions -------------------------------------------------------------------------------
def create_request(data: RequestData, *, user: Any, cluster: str, request: Any = None) -> PriorityRequest:
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
        _mail("new_request", priority, staff_recipients())
    return priority


# --- staff decisions ----------------------------------------------------------------------------
def validate_qos_name(name: str, *, exclude_pk: int | None = None) -> list[str]:
    if not sacctmgr.is_valid_qos_name(name):
        return [_("A priority name has letters, digits, _ and - only (at most 64, not starting with -).")]
    taken = PriorityRequest.objects.filter(qos_name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        return [_("Another priority already uses the name %(name)s.") % {"name": name}]
    if Qos.objects.filter(name=name, deleted=0).exists():
        return [_("Slurm already has a QOS named %(name)s.") % {"name": name}]
    return []


def accept(priority: PriorityRequest, *, qos_name: str, actor: str, request: Any = None) -> PriorityRequest:
    if priority.status != Status.PENDING:
        raise ValidationError({"qos_name": [_("Only a pending request can be accepted.")]})
    errors = validate_qos_name(qos_name, exclude_pk=priority.pk)
    if errors:
        raise ValidationError({"qos_name": errors})
    with transaction.atomic():
        priority.qos_name = qos_name
        priority.status = Status.ACCEPTED
        priority.decided_by = actor
        priority.decided_at = now()
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
    if priority.start <= now():
        transaction.on_commit(partial(enqueue, "priorities.activate", priority_id=priority.pk))


def refuse(priority: PriorityRequest, *, reason: str, actor: str, request: Any = None) -> PriorityRequest:
    if priority.status != Status.PENDING:
        raise ValidationError({"reason": [_("Only a pending request can be refused.")]})
    if not reason.strip():
        raise ValidationError({"reason": [_("Give the reason for the refusal.")]})
    with transaction.atomic():
        priority.status = Status.REFUSED
        priority.refusal_reason = reason.strip()
        priority.decided_by = actor
        priority.decided_at = now()
        priority.save()
        audit(
            "priority.refuse", request=request, actor=actor, target=f"priority:{priority.pk}", extra={"reason": reason}
        )
        notify_users("refused", priority)
    return priority


def add_message(priority: PriorityRequest, *, text: str, actor: str, request: Any = None) -> PriorityMessage:
    if not text.strip():
        raise ValidationError({"text": [_("The message is empty.")]})
    with transaction.atomic():
        message = PriorityMessage.objects.create(request=priority, author=actor, text=text.strip())
        audit("priority.message", request=request, actor=actor, target=f"priority:{priority.pk}", extra={"text": text})
        notify_users("message", priority, message=message)
    return message


def add_users(
    priority: PriorityRequest,
    *,
    usernames: Sequence[str],
    actor: str,
    request: Any = None,
    sacct: SacctmgrClient | None = None,
) -> list[str]:
    bad = [name for name in usernames if not sacctmgr.ENTITY_NAME.fullmatch(name)]
    if bad:
        raise ValidationError({"users": [_("Not valid user names: %(names)s.") % {"names": ", ".join(bad)}]})
    missing = _members_without_association(list(usernames), priority.account, priority.cluster)
    if missing:
        raise ValidationError(
            {
                "users": [
                    _("These users have no association with %(account)s: %(names)s.")
                    % {"account": priority.account, "names": ", ".join(missing)}
                ]
            }
        )
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
        slurm = sacct or client()
        for name in added:
            slurm.add_user_qos(name, priority.account, priority.qos_name)
    return added


def remove_user(
    priority: PriorityRequest, *, username: str, actor: str, request: Any = None, sacct: SacctmgrClient | None = None
) -> bool:
    deleted, _rows = PriorityMember.objects.filter(request=priority, username=username).delete()
    if not deleted:
        return False
    audit(
        "priority.remove_user", request=request, actor=actor, target=f"priority:{priority.pk}", extra={"user": username}
    )
    if automatic() and priority.status == Status.ACTIVE and priority.qos_name:
        (sacct or client()).remove_user_qos(username, priority.account, priority.qos_name)
    return True


def mark_applied(priority: PriorityRequest, *, actor: str, request: Any = None) -> PriorityRequest:
    """Manual mode: staff ran the commands. The request becomes active (and the users are told)."""
    if priority.status != Status.ACCEPTED:
        raise ValidationError(_("Only an accepted request can be marked applied."))
    with transaction.atomic():
        priority.status = Status.ACTIVE
        priority.applied_at = now()
        priority.start_notified_at = priority.applied_at
        priority.save()
        audit("priority.mark_applied", request=request, actor=actor, target=f"priority:{priority.pk}")
        notify_users("started", priority)
    return priority


def mark_removed(priority: PriorityRequest, *, actor: str, request: Any = None) -> PriorityRequest:
    """Manual mode: staff ran the removal commands."""
    with transaction.atomic():
        priority.removed_at = now()
        if priority.status in (Status.ACCEPTED, Status.ACTIVE):
            priority.status = Status.EXPIRED
        priority.save()
        audit("priority.mark_removed", request=request, actor=actor, target=f"priority:{priority.pk}")
    return priority


def delete_request(
    priority: PriorityRequest, *, actor: str, request: Any = None, sacct: SacctmgrClient | None = None
) -> None:
    """Delete a request; in automatic mode its QOS goes first, so nothing is left in Slurm."""
    if automatic() and priority.qos_name and priority.applied_at and not priority.removed_at:
        remove_from_slurm(priority, sacct or client())
    pk = priority.pk
    with transaction.atomic():
        audit(
            "priority.delete", request=request, actor=actor, target=f"priority:{pk}", extra={"qos": priority.qos_name}
        )
        priority.delete()


# --- applying and expiring ----------------------------------------------------------------------
def apply_to_slurm(priority: PriorityRequest, slurm: SacctmgrClient) -> None:
    spec = qos_spec(priority)
    slurm.add_qos(spec)
    for name in priority.usernames():
        slurm.add_user_qos(name, priority.account, spec.name)


def remove_from_slurm(priority: PriorityRequest, slurm: SacctmgrClient) -> None:
    assert priority.qos_name
    # Deleting the QOS also removes it from every association (domain 2.2); the explicit removals
    # leave no "-=" trace behind if the delete fails halfway.
    for name in priority.usernames():
        if sacctmgr.ENTITY_NAME.fullmatch(name):
            try:
                slurm.remove_user_qos(name, priority.account, priority.qos_name)
            except sacctmgr.SacctmgrError:
                logger.warning("priority %s: removing %s's QOS failed; deleting the QOS anyway", priority.pk, name)
    slurm.delete_qos(priority.qos_name)


def activate(priority: PriorityRequest, *, at: datetime | None = None, slurm: SacctmgrClient | None = None) -> bool:
    """Automatic mode: at the start, create the QOS and give it to the users. Idempotent."""
    at = at or now()
    if priority.status != Status.ACCEPTED or not (priority.start <= at < priority.end) or not automatic():
        return False
    apply_to_slurm(priority, slurm or client())
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


def expire(priority: PriorityRequest, *, at: datetime | None = None, slurm: SacctmgrClient | None = None) -> bool:
    """At the end: remove the QOS (automatic mode) and archive the request. Idempotent."""
    at = at or now()
    if priority.end > at or priority.status not in (Status.ACCEPTED, Status.ACTIVE, Status.PENDING):
        return False
    was_pending = priority.status == Status.PENDING
    removed = False
    if automatic() and priority.qos_name and not was_pending:
        remove_from_slurm(priority, slurm or client())
        removed = True
    with transaction.atomic():
        priority.status = Status.EXPIRED
        if removed:
            priority.removed_at = at
        priority.save()
        audit("priority.expire", actor="priorities", target=f"priority:{priority.pk}", extra={"qos": priority.qos_name})
    return True


# --- reconciling the database with Slurm --------------------------------------------------------
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
    slurm: SacctmgrClient | None = None,
    progress: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Start what is due, expire what has ended, warn of approaching ends, and repair drift.

    The database is the source of truth. In manual mode, or with ``dry_run``, Slurm is never
    changed: the drift is only reported (staff run the commands shown in the panel).
    """
    at = at or now()
    changes: list[Change] = []
    write = automatic() and not dry_run

    def record(change: Change) -> None:
        changes.append(change)
        logger.info("reconcile: %s", change)
        if progress:
            progress(change)

    def sacct() -> SacctmgrClient:
        return slurm or client()

    # 1. Time-driven transitions.
    for priority in PriorityRequest.objects.filter(status=Status.ACCEPTED, start__lte=at, end__gt=at):
        if automatic():
            record(Change(priority.pk, "activate", priority.qos_name or ""))
            if not dry_run:
                activate(priority, at=at, slurm=sacct())
    for priority in PriorityRequest.objects.filter(status__in=OPEN_STATUSES, end__lte=at):
        record(Change(priority.pk, "expire", priority.qos_name or ""))
        if not dry_run:
            expire(priority, at=at, slurm=sacct())
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
                        sacct().add_qos(spec)
                elif not _qos_matches(row, spec, gpu_id):
                    record(Change(priority.pk, "fix-qos-limits", name))
                    if write:
                        sacct().add_qos(spec)
                wanted = {(u, priority.account) for u in priority.usernames()}
                have = state.users_of.get(name, set())
                for user, account in sorted(wanted - have):
                    record(Change(priority.pk, "add-user-qos", f"{user}/{account} {name}"))
                    if write:
                        try:
                            sacct().add_user_qos(user, account, name)
                        except sacctmgr.SacctmgrError as exc:
                            record(Change(priority.pk, "failed", str(exc)))
                for user, account in sorted(have - wanted):
                    record(Change(priority.pk, "remove-user-qos", f"{user}/{account} {name}"))
                    if write:
                        sacct().remove_user_qos(user, account, name)
            elif row is not None and priority.status in (Status.EXPIRED, Status.REFUSED):
                record(Change(priority.pk, "delete-qos", name))
                if write:
                    remove_from_slurm(priority, sacct())
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


# --- timeline -----------------------------------------------------------------------------------
def timeline(
    cluster: str, *, at: datetime | None = None, days_before: int = 30, days_after: int = 60
) -> dict[str, Any]:
    """Reserved GPUs per type over time (accepted, active and past priorities) and the cluster's GPUs."""
    at = at or now()
    window_start, window_end = at - timedelta(days=days_before), at + timedelta(days=days_after)
    rows = PriorityRequest.objects.filter(
        cluster=cluster,
        status__in=(Status.ACCEPTED, Status.ACTIVE, Status.EXPIRED),
        start__lt=window_end,
        end__gt=window_start,
    ).values_list("gpu_type", "gpu_count", "start", "end")
    deltas: dict[str, dict[datetime, int]] = {}
    for gpu_type, count, start, end in rows:
        per_type = deltas.setdefault(gpu_type, {})
        start, end = max(start, window_start), min(end, window_end)
        per_type[start] = per_type.get(start, 0) + count
        per_type[end] = per_type.get(end, 0) - count
    capacity = cluster_gpus(cluster)
    series = []
    for gpu_type in sorted(set(deltas) | set(capacity)):
        xs, ys, level = [window_start.isoformat()], [0], 0
        for moment in sorted(deltas.get(gpu_type, {})):
            level += deltas[gpu_type][moment]
            xs.append(moment.isoformat())
            ys.append(level)
        xs.append(window_end.isoformat())
        ys.append(level)
        series.append({"gpu_type": gpu_type, "x": xs, "y": ys, "capacity": capacity.get(gpu_type)})
    return {"start": window_start.isoformat(), "end": window_end.isoformat(), "now": at.isoformat(), "series": series}


def timeline_summary(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The text alternative: the peak reservation of each GPU type against the cluster's count."""
    return [
        {"gpu_type": s["gpu_type"], "peak": max(s["y"]) if s["y"] else 0, "capacity": s["capacity"]}
        for s in data["series"]
    ]
