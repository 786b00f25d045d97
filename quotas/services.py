"""Storage use against quotas, from Robinhood's ACCT_STAT (domain 5): the user page's reports.

Project use counts rows with no HSM status ('' or 'new'); nearline (HSM) use is split into "on
disk" (modified, archiving, synchro, retrieving: blocks × 512) and "on tape" (released: the
file size, since a released file keeps 0 blocks). Each page costs a fixed number of queries:
one per aggregate, never one per user or group. The limits come from quotas.limits; the daily
check and its alerts live in quotas.alerts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from django.db import DatabaseError
from django.db.models import Sum
from django.utils.translation import gettext_lazy

from quotas.limits import Limits, limits_for
from quotas.models import BLOCK_BYTES, AcctStat, QuotaAlert
from slurm.visibility import accounts_of
from userportal.errors import DataSourceError

logger = logging.getLogger(__name__)

PROJECT_STATUSES = ("", "new")
NEARLINE_DISK_STATUSES = ("modified", "archiving", "synchro", "retrieving")
NEARLINE_TAPE_STATUS = "released"
MIN_USER_INODES = 2  # TT keeps users with more than 2 entries (a home directory and a dotfile are noise)


class RobinhoodUnavailable(DataSourceError):
    source = "robinhood"
    user_message = gettext_lazy("Storage use is unavailable right now: the Robinhood database is not answering.")


@dataclass
class Usage:
    bytes: int = 0
    inodes: int = 0


@dataclass
class UserUse:
    user: str
    bytes: int = 0
    inodes: int = 0
    nearline_disk: int = 0
    nearline_tape: int = 0


@dataclass
class GroupReport:
    group: str
    limits: Limits
    project: Usage = field(default_factory=Usage)
    nearline_disk: Usage = field(default_factory=Usage)
    nearline_tape: Usage = field(default_factory=Usage)
    users: list[UserUse] = field(default_factory=list)
    alert: QuotaAlert | None = None

    @property
    def bytes_percent(self) -> float | None:
        return percent_of(self.project.bytes, self.limits.bytes)

    @property
    def inodes_percent(self) -> float | None:
        return percent_of(self.project.inodes, self.limits.inodes)

    @property
    def nearline_total(self) -> int:
        return self.nearline_disk.bytes + self.nearline_tape.bytes

    @property
    def has_nearline(self) -> bool:
        return bool(self.nearline_total or self.nearline_disk.inodes or self.nearline_tape.inodes)

    @property
    def nearline_disk_percent(self) -> float | None:
        return percent_of(self.nearline_disk.bytes, self.limits.nearline_bytes)

    @property
    def nearline_tape_percent(self) -> float | None:
        return percent_of(self.nearline_tape.bytes, self.limits.nearline_bytes)


def percent_of(value: int, limit: int) -> float | None:
    return value * 100.0 / limit if limit else None  # a quota of 0 means "none", not a division


def text(value: Any) -> str:
    """Robinhood declares uid and gid VARBINARY: MySQL drivers hand back bytes."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def bucket(lhsm_status: str) -> str | None:
    if lhsm_status in PROJECT_STATUSES:
        return "project"
    if lhsm_status in NEARLINE_DISK_STATUSES:
        return "disk"
    if lhsm_status == NEARLINE_TAPE_STATUS:
        return "tape"
    return None


def bytes_of(lhsm_status: str, blocks: int, size: int) -> int:
    """The byte rule: blocks × 512, except released files (0 blocks on disk): their size."""
    return int(size or 0) if lhsm_status == NEARLINE_TAPE_STATUS else int(blocks or 0) * BLOCK_BYTES


# --- Robinhood reads ----------------------------------------------------------------------------
P = ParamSpec("P")
R = TypeVar("R")


def _robinhood(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a database failure on the robinhood alias into RobinhoodUnavailable."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DatabaseError as exc:
            logger.warning("Robinhood query failed: %s", exc)
            raise RobinhoodUnavailable(str(exc)) from exc

    return wrapper


@_robinhood
def groups_with_files(username: str) -> list[str]:
    return sorted({text(gid) for gid in AcctStat.objects.filter(uid=username).values_list("gid", flat=True).distinct()})


def groups_of(username: str, cluster: str) -> list[str]:
    """The groups a user's page shows: their Slurm accounts and every group they own files in."""
    try:
        slurm_groups = set(accounts_of(username, cluster))
    except DatabaseError:
        slurm_groups = set()
    return sorted(slurm_groups | set(groups_with_files(username)))


@_robinhood
def group_totals(groups: Iterable[str] | None = None) -> dict[str, dict[str, Usage]]:
    """Per group, {"project"|"disk"|"tape": Usage}: one query (all groups when ``groups`` is None)."""
    rows = AcctStat.objects.all()
    if groups is not None:
        rows = rows.filter(gid__in=list(groups))
    result: dict[str, dict[str, Usage]] = {}
    for gid, status, count, blocks, size in (
        rows.values("gid", "lhsm_status")
        .annotate(c=Sum("count"), b=Sum("blocks"), s=Sum("size"))
        .values_list("gid", "lhsm_status", "c", "b", "s")
        .order_by()
    ):
        gid, status = text(gid), text(status)
        kind = bucket(status)
        if kind is None:
            continue
        usage = result.setdefault(gid, {}).setdefault(kind, Usage())
        usage.inodes += int(count or 0)
        usage.bytes += bytes_of(status or "", blocks, size)
    return result


@_robinhood
def users_by_group(groups: Iterable[str]) -> dict[str, list[UserUse]]:
    """Per group, its users' project and nearline use (root excluded), largest first: one query."""
    per: dict[tuple[str, str], UserUse] = {}
    rows = (
        AcctStat.objects.filter(gid__in=list(groups))
        .exclude(uid="root")
        .values("gid", "uid", "lhsm_status")
        .annotate(c=Sum("count"), b=Sum("blocks"), s=Sum("size"))
        .values_list("gid", "uid", "lhsm_status", "c", "b", "s")
        .order_by()
    )
    for gid, uid, status, count, blocks, size in rows:
        gid, uid, status = text(gid), text(uid), text(status)
        kind = bucket(status)
        if kind is None:
            continue
        use = per.setdefault((gid, uid), UserUse(uid))
        amount = bytes_of(status or "", blocks, size)
        if kind == "project":
            use.bytes += amount
            use.inodes += int(count or 0)
        elif kind == "disk":
            use.nearline_disk += amount
        else:
            use.nearline_tape += amount
    result: dict[str, list[UserUse]] = {}
    for (gid, _uid), use in per.items():
        if use.inodes > MIN_USER_INODES or use.nearline_disk or use.nearline_tape > 2:
            result.setdefault(gid, []).append(use)
    for users in result.values():
        users.sort(key=lambda u: (-u.bytes, -(u.nearline_disk + u.nearline_tape), u.user))
    return result


def reports_for(username: str, cluster: str) -> list[GroupReport]:
    """The user page: every group of ``username`` with use, limits, users and any alert."""
    groups = groups_of(username, cluster)
    if not groups:
        return []
    totals = group_totals(groups)
    users = users_by_group(groups)
    limits = limits_for(groups)
    alerts = {a.group: a for a in QuotaAlert.objects.filter(group__in=groups, level__gt=0)}
    reports = []
    for group in groups:
        kinds = totals.get(group, {})
        reports.append(
            GroupReport(
                group=group,
                limits=limits[group],
                project=kinds.get("project", Usage()),
                nearline_disk=kinds.get("disk", Usage()),
                nearline_tape=kinds.get("tape", Usage()),
                users=users.get(group, []),
                alert=alerts.get(group),
            )
        )
    return reports
