"""GPU priority policy: the limits from settings, what the cluster has, and checking a request against both.

Pure checks: nothing here writes. services.create_request and services.accept refuse what these
functions report; the request form shows the same messages on its fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from priorities.models import OPEN_STATUSES, PriorityRequest, compute_end
from slurm import sacctmgr
from slurm.decoders import parse_tres
from slurm.models import Qos, Tres, cluster_models
from slurm.visibility import accounts_of

TICKET = re.compile(r"(?:#?\d{1,10}|https?://\S{1,190})")
# How far in the past a start may be (the time it takes to fill in the form).
START_SLACK = timedelta(minutes=15)


def per_type(items: Iterable[str]) -> dict[str, int]:
    """``["a100=2", "*=4"]`` (a PRIORITIES_* setting) to ``{"a100": 2, "*": 4}``."""
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
            max_gpus_per_request=per_type(settings.PRIORITIES_MAX_GPUS_PER_REQUEST),
            max_gpus_per_account=per_type(settings.PRIORITIES_MAX_GPUS_PER_ACCOUNT),
            max_open_per_account=settings.PRIORITIES_MAX_ACTIVE_PER_ACCOUNT,
        )

    def request_limit(self, gpu_type: str) -> int | None:
        return self.max_gpus_per_request.get(gpu_type, self.max_gpus_per_request.get("*"))

    def account_limit(self, gpu_type: str) -> int | None:
        return self.max_gpus_per_account.get(gpu_type, self.max_gpus_per_account.get("*"))

    def limits_for(self, gpu_types: Iterable[str]) -> dict[str, dict[str, int | None]]:
        """Per GPU type, for the policy page and the form's script."""
        return {t: {"request": self.request_limit(t), "account": self.account_limit(t)} for t in gpu_types}


def gpu_types() -> list[str]:
    """GPU models of the TRES (``gres/gpu:<type>`` rows of tres_table, which every cluster shares), sorted."""
    return sorted(set(Tres.catalog().gpu_types.values()))


def cluster_gpus(cluster: str) -> dict[str, int]:
    """GPUs per type: the setting, else the cluster's latest TRES registration in the event table."""
    configured = per_type(settings.PRIORITIES_CLUSTER_GPUS)
    if configured:
        return configured
    event = cluster_models(cluster).event
    row = event.objects.filter(node_name="", time_end=0).order_by("-time_start").values_list("tres", flat=True).first()
    if not row:
        return {}
    catalog = Tres.catalog()
    return catalog.gpus_by_type(parse_tres(row))


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


def users_errors(usernames: Sequence[str], account: str | None, cluster: str) -> list[str]:
    """Why these users cannot share a priority of `account`: bad names, or no association with it.

    With `account` None (the account itself is wrong) only the names are checked.
    """
    bad = [name for name in usernames if not sacctmgr.ENTITY_NAME.fullmatch(name)]
    if bad:
        return [_("Not valid user names: %(names)s.") % {"names": ", ".join(bad)}]
    if not usernames or account is None:
        return []
    assoc = cluster_models(cluster).assoc
    found = set(assoc.objects.filter(user__in=list(usernames), acct=account, deleted=0).values_list("user", flat=True))
    missing = [name for name in usernames if name not in found]
    if missing:
        return [
            _("These users have no association with %(account)s: %(names)s.")
            % {"account": account, "names": ", ".join(missing)}
        ]
    return []


def open_requests(account: str, cluster: str) -> QuerySet[PriorityRequest]:
    """The account's requests that hold GPUs now or later: they count against its limits."""
    return PriorityRequest.objects.filter(account=account, cluster=cluster, status__in=OPEN_STATUSES)


def validate_request(
    data: RequestData,
    *,
    username: str,
    cluster: str,
    policy: Policy | None = None,
    at: datetime | None = None,
) -> dict[str, list[str]]:
    """Every policy violation, by form field. Empty when the request may be filed."""
    policy = policy or Policy.from_settings()
    at = at or timezone.now()
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if data.account not in accounts_of(username, cluster):
        add("account", _("You have no association with the Slurm account %(account)s.") % {"account": data.account})
    types = gpu_types()
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

    for message in users_errors(data.users, None if "account" in errors else data.account, cluster):
        add("users", message)

    if "account" not in errors:
        others = open_requests(data.account, cluster)
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


def validate_qos_name(name: str, *, exclude_pk: int | None = None) -> list[str]:
    """Why staff may not give a request this QOS name: its form, or a priority or QOS that has it."""
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
