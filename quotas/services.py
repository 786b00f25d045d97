"""Storage use against quotas, from Robinhood's ACCT_STAT (domain 5), and the alerts.

Project use counts rows with no HSM status ('' or 'new'); nearline (HSM) use is split into "on
disk" (modified, archiving, synchro, retrieving: blocks × 512) and "on tape" (released: the
file size, since a released file keeps 0 blocks). Each page costs a fixed number of queries:
one per aggregate, never one per user or group.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import DatabaseError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from quotas import ldap_source
from quotas.models import BLOCK_BYTES, AcctStat, Quota, QuotaAlert, UsageSnapshot
from slurm.models import cluster_models
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


@dataclass(frozen=True)
class Limits:
    bytes: int
    inodes: int
    nearline_bytes: int = 0


@dataclass
class Usage:
    bytes: int = 0
    inodes: int = 0

    def percent_of(self, limit: int) -> float | None:
        return self.bytes * 100.0 / limit if limit else None


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
        return _percent(self.project.bytes, self.limits.bytes)

    @property
    def inodes_percent(self) -> float | None:
        return _percent(self.project.inodes, self.limits.inodes)

    @property
    def nearline_total(self) -> int:
        return self.nearline_disk.bytes + self.nearline_tape.bytes

    @property
    def has_nearline(self) -> bool:
        return bool(self.nearline_total or self.nearline_disk.inodes or self.nearline_tape.inodes)

    @property
    def nearline_disk_percent(self) -> float | None:
        return _percent(self.nearline_disk.bytes, self.limits.nearline_bytes)

    @property
    def nearline_tape_percent(self) -> float | None:
        return _percent(self.nearline_tape.bytes, self.limits.nearline_bytes)


def _percent(value: int, limit: int) -> float | None:
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


# --- Quota sources ------------------------------------------------------------------------------
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5, "E": 1024**6}


def parse_size(value: Any) -> int:
    """``1099511627776``, ``"1T"``, ``"500 GiB"`` → bytes (binary units, as Lustre's lfs prints them)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def default_limits() -> Limits:
    return Limits(settings.QUOTAS_DEFAULT_BYTES, settings.QUOTAS_DEFAULT_INODES, settings.QUOTAS_DEFAULT_NEARLINE_BYTES)


def load_quota_file(path: str) -> dict[str, Limits]:
    """``{"default": {...}, "groups": {"physics": {"bytes": "10T", "inodes": 1000000, "nearline_bytes": "50T"}}}``.

    JSON, or YAML when the name ends in .yaml/.yml. A group without a value takes the default's.
    """
    text = Path(path).read_text(encoding="utf-8")
    data = _yaml(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with 'default' and 'groups'")
    base = default_limits()
    default = _limits(data.get("default") or {}, base)
    groups = data.get("groups") or {}
    if not isinstance(groups, dict):
        raise ValueError(f"{path}: 'groups' must be a mapping of group name to limits")
    result = {"*": default}
    for name, values in groups.items():
        result[str(name)] = _limits(values or {}, default)
    return result


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _limits(values: dict[str, Any], base: Limits) -> Limits:
    return Limits(
        bytes=parse_size(values.get("bytes", base.bytes)),
        inodes=int(values.get("inodes", base.inodes)),
        nearline_bytes=parse_size(values.get("nearline_bytes", base.nearline_bytes)),
    )


def limits_for(groups: Iterable[str]) -> dict[str, Limits]:
    """Each group's limits from QUOTAS_SOURCE (model: one query; file: read per call, small; ldap:
    one search, cached). LDAP down raises LdapQuotasUnavailable."""
    names = sorted(set(groups))
    if settings.QUOTAS_SOURCE == "file":
        table = load_quota_file(settings.QUOTAS_FILE)
        return {name: table.get(name, table["*"]) for name in names}
    if settings.QUOTAS_SOURCE == "ldap":
        return ldap_limits(names)
    rows = {q.group: q for q in Quota.objects.filter(group__in=names)}
    base = default_limits()
    return {
        name: Limits(rows[name].bytes_limit, rows[name].inodes_limit, rows[name].nearline_bytes_limit)
        if name in rows
        else base
        for name in names
    }


def ldap_limits(groups: Iterable[str]) -> dict[str, Limits]:
    """Limits from the groups' LDAP attributes; a missing or unreadable attribute takes the default."""
    names = sorted(set(groups))
    raw = ldap_source.quotas_for(names)
    base = default_limits()
    return {name: _ldap_limits(name, raw.get(name, {}), base) for name in names}


def _ldap_limits(group: str, values: dict[str, str], base: Limits) -> Limits:
    def read(field: str, default: int) -> int:
        if field not in values:
            return default
        try:
            return parse_size(values[field])
        except ValueError:
            logger.warning(
                "LDAP quota %s of group %s is not a size: %r; using the default", field, group, values[field]
            )
            return default

    return Limits(
        bytes=read("bytes", base.bytes),
        inodes=read("inodes", base.inodes),
        nearline_bytes=read("nearline_bytes", base.nearline_bytes),
    )


# --- Robinhood reads ----------------------------------------------------------------------------
def _robinhood(func: Any) -> Any:
    """Turn a database failure on the robinhood alias into RobinhoodUnavailable."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
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


def banner_alerts(username: str, cluster: str) -> list[QuotaAlert]:
    """Alerts to show ``username`` (their groups over a threshold); empty when a source is down."""
    try:
        groups = groups_of(username, cluster)
    except DataSourceError:
        return []
    return list(QuotaAlert.objects.filter(group__in=groups, level__gt=0))


# --- History, trend and alerts ------------------------------------------------------------------
@dataclass(frozen=True)
class Trend:
    bytes_per_day: float | None
    full_on: date | None


def trend(points: list[tuple[date, int]], limit: int, *, today: date) -> Trend:
    """Least-squares bytes per day over ``points`` and the day the use reaches ``limit`` at that pace."""
    if len(points) < 2:
        return Trend(None, None)
    xs = [(day - points[0][0]).days for day, _value in points]
    ys = [float(value) for _day, value in points]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return Trend(None, None)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
    current = ys[-1]
    if slope <= 0 or not limit:
        return Trend(slope, None)
    if current >= limit:
        return Trend(slope, today)
    days = (limit - current) / slope
    if days > 3650:
        return Trend(slope, None)  # more than ten years away: not a useful date
    return Trend(slope, today + timedelta(days=int(days) + 1))


def record_snapshots(totals: dict[str, dict[str, Usage]], *, day: date) -> None:
    """Upsert each group's use for ``day`` (idempotent: a second run the same day overwrites)."""
    for group, kinds in totals.items():
        project = kinds.get("project", Usage())
        nearline = kinds.get("disk", Usage()).bytes + kinds.get("tape", Usage()).bytes
        UsageSnapshot.objects.update_or_create(
            group=group,
            day=day,
            defaults={"bytes_used": project.bytes, "inodes_used": project.inodes, "nearline_bytes": nearline},
        )


def history(groups: Iterable[str], *, today: date) -> dict[str, list[tuple[date, int]]]:
    since = today - timedelta(days=settings.QUOTAS_TREND_DAYS)
    points: dict[str, list[tuple[date, int]]] = {}
    for group, day, used in (
        UsageSnapshot.objects.filter(group__in=list(groups), day__gte=since)
        .order_by("group", "day")
        .values_list("group", "day", "bytes_used")
    ):
        points.setdefault(group, []).append((day, used))
    return points


def level_for(percent: float | None) -> int:
    passed = [t for t in settings.QUOTAS_ALERT_THRESHOLDS if percent is not None and percent >= t]
    return max(passed) if passed else 0


@dataclass
class CheckResult:
    groups: int = 0
    raised: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    mailed: int = 0
    skipped: str = ""  # why alerts were not evaluated this run ("" when they were)


def check_quotas(*, today: date | None = None, cluster: str | None = None, dry_run: bool = False) -> CheckResult:
    """Snapshot every group's use, then raise, update or clear its alert; mail members on a new level.

    Safe to run twice: snapshots are upserted by (group, day) and an alert is mailed only when its
    level goes up, so a repeated run (Celery's acks_late redelivery) mails nobody again.
    With the LDAP quota source down, the use is still recorded but alerts wait for the next run.
    """
    today = today or timezone.now().date()
    totals = group_totals()
    result = CheckResult(groups=len(totals))
    if not dry_run:
        record_snapshots(totals, day=today)
    try:
        limits = limits_for(totals)
    except ldap_source.LdapQuotasUnavailable as exc:
        logger.warning("quota check: alerts skipped this run, the quotas are unavailable: %s", exc)
        result.skipped = f"{exc.source}: {exc}"
        return result
    points = history(totals, today=today)
    existing = {a.group: a for a in QuotaAlert.objects.filter(group__in=list(totals))}
    for group, kinds in sorted(totals.items()):
        project = kinds.get("project", Usage())
        limit = limits[group]
        bytes_pct = _percent(project.bytes, limit.bytes)
        inodes_pct = _percent(project.inodes, limit.inodes)
        level = max(level_for(bytes_pct), level_for(inodes_pct))
        alert = existing.get(group)
        previous = alert.level if alert else 0
        if level == 0 and previous == 0:
            continue
        series = points.get(group, []) or [(today, project.bytes)]
        if series[-1][0] != today:
            series = [*series, (today, project.bytes)]
        fit = trend(series, limit.bytes, today=today)
        if level > previous:
            result.raised.append(group)
        elif level == 0:
            result.cleared.append(group)
        if dry_run:
            continue
        with transaction.atomic():
            alert, _created = QuotaAlert.objects.update_or_create(
                group=group,
                defaults={
                    "level": level,
                    "bytes_percent": bytes_pct or 0.0,
                    "inodes_percent": inodes_pct or 0.0,
                    "bytes_per_day": fit.bytes_per_day,
                    "full_on": fit.full_on,
                },
            )
            if level > previous:
                recipients = member_emails(group, cluster)
                alert.mailed_at = timezone.now()
                alert.save(update_fields=["mailed_at"])
                transaction.on_commit(partial(_send_alert, group, level, alert.pk, recipients))
                result.mailed += len(recipients)
                _audit(group, level, len(recipients), bytes_pct, inodes_pct)
    return result


def member_emails(group: str, cluster: str | None) -> list[str]:
    """Addresses of the group's people: its Slurm account's members and its file owners (2 + 1 queries)."""
    from slurm.models import default_cluster

    names = {
        text(uid)
        for uid in AcctStat.objects.filter(gid=group).exclude(uid="root").values_list("uid", flat=True).distinct()
    }
    try:
        assoc = cluster_models(cluster or default_cluster()).assoc
        names |= set(assoc.objects.filter(acct=group, deleted=0).exclude(user="").values_list("user", flat=True))
    except DatabaseError:
        logger.warning("Slurm database unavailable: mailing %s's file owners only", group)
    users = get_user_model().objects.filter(username__in=names, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _send_alert(group: str, level: int, alert_id: int, recipients: list[str]) -> None:
    alert = QuotaAlert.objects.filter(pk=alert_id).first()
    if alert is None or not recipients:
        return
    subject = _("Storage of %(group)s is over %(level)d %% of its quota") % {"group": group, "level": level}
    lines = [
        _(
            "The project space of the group %(group)s uses %(bytes)s %% of its space quota and %(inodes)s %% of its file quota."
        )
        % {"group": group, "bytes": f"{alert.bytes_percent:.1f}", "inodes": f"{alert.inodes_percent:.1f}"}
    ]
    if alert.bytes_per_day:
        lines.append(_("Over the last days it grew by %(rate)s per day.") % {"rate": human_bytes(alert.bytes_per_day)})
    if alert.full_on:
        lines.append(_("At that pace it will be full on %(day)s.") % {"day": alert.full_on.isoformat()})
    lines.append(_("Please remove or archive files you no longer need."))
    for address in recipients:  # one message each: members do not see each other's addresses
        send_mail(subject, "\n\n".join(lines), None, [address], fail_silently=False)


def _audit(group: str, level: int, recipients: int, bytes_pct: float | None, inodes_pct: float | None) -> None:
    try:
        from userportal.audit import audit
    except ImportError:  # pragma: no cover - the audit module is being written alongside
        return
    audit(
        "quotas.alert",
        actor="quotas.check_quotas",
        target=f"group:{group}",
        status="ok",
        extra={"level": level, "recipients": recipients, "bytes_percent": bytes_pct, "inodes_percent": inodes_pct},
    )


def human_bytes(value: float) -> str:
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(amount) < 1024 or unit == "PiB":
            return f"{amount:.1f} {unit}" if unit != "B" else f"{int(amount)} B"
        amount /= 1024
    return f"{amount:.1f} PiB"
