"""The daily quota check: snapshots of each group's use, the growth trend, alerts and their mails.

Runs as the quotas.check_quotas Celery task (beat, every QUOTAS_CHECK_HOURS). Safe to run twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from quotas import ldap_source
from quotas.limits import limits_for
from quotas.models import AcctStat, QuotaAlert, UsageSnapshot
from quotas.services import Usage, group_totals, percent_of, text
from slurm.models import cluster_models, default_cluster
from userportal.audit import audit

logger = logging.getLogger(__name__)


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
        bytes_pct = percent_of(project.bytes, limit.bytes)
        inodes_pct = percent_of(project.inodes, limit.inodes)
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
