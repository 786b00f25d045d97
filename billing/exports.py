"""The CSV files (usage, receipts, payments, the audit log) and the audit log's filtered listing.

Money in major units with two decimals, times in UTC ISO 8601 (``...Z``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd
from django.db.models import QuerySet

from billing.models import Receipt
from userportal import csvsafe
from userportal.models import AuditEntry

USAGE_CSV_COLUMNS = [
    ("cluster", "cluster"),
    ("job_id", "job_id"),
    ("submit", "submit"),
    ("user", "user"),
    ("account", "account"),
    ("tier", "tier"),
    ("partition", "partition"),
    ("state", "state"),
    ("end", "end"),
    ("elapsed_s", "elapsed"),
    ("total_cpu_s", "total_cpu"),
    ("alloc_tres", "alloc_tres"),
    ("gpu_type", "gpu_type"),
    ("cpu_hours", "cpu_hours"),
    ("gpu_hours", "gpu_hours"),
    ("mem_gb_hours", "mem_gb_hours"),
    ("cpu_cost", "cpu_minor"),
    ("gpu_cost", "gpu_minor"),
    ("mem_cost", "mem_minor"),
    ("cost", "cost_minor"),
    ("unused_cpu_cost", "unused_minor"),
    ("receipt", "billed"),
]
RECEIPT_CSV_COLUMNS = [
    "receipt",
    "cluster",
    "job_id",
    "submit",
    "user",
    "account",
    "tier",
    "partition",
    "state",
    "end",
    "elapsed_s",
    "alloc_tres",
    "gpu_type",
    "cpu_hours",
    "gpu_hours",
    "mem_gb_hours",
    "cpu_cost",
    "gpu_cost",
    "mem_cost",
    "cost",
    "currency",
]
PAID_CSV_COLUMNS = ["receipt", "user", "cluster", "jobs", "total", "currency", "created_at", "paid_at", "paid_by"]


def usage_csv(priced: pd.DataFrame) -> str:
    """The usage table as CSV (USAGE_CSV_COLUMNS; money in major units, two decimals)."""
    out = pd.DataFrame({name: priced[source] for name, source in USAGE_CSV_COLUMNS}) if len(priced) else None
    if out is None:
        return ",".join(name for name, _ in USAGE_CSV_COLUMNS) + "\r\n"
    for name in ("cpu_cost", "gpu_cost", "mem_cost", "cost", "unused_cpu_cost"):
        out[name] = [f"{int(v) // 100}.{int(v) % 100:02d}" for v in out[name]]
    for name in ("cpu_hours", "gpu_hours", "mem_gb_hours"):
        out[name] = out[name].round(4)
    out["total_cpu_s"] = out["total_cpu_s"].round(3)
    for name in ("submit", "end"):
        out[name] = out[name].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return csvsafe.frame_csv(out, index=False, lineterminator="\r\n")


def _csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def receipt_csv(receipt: Receipt) -> str:
    return _csv(
        RECEIPT_CSV_COLUMNS,
        (
            [
                receipt.pk,
                item.cluster,
                item.job_id,
                _iso(item.submit),
                item.user,
                item.account,
                item.tier,
                item.partition,
                item.state,
                _iso(item.end),
                item.elapsed,
                item.alloc_tres,
                item.gpu_type,
                item.cpu_hours,
                item.gpu_hours,
                item.mem_gb_hours,
                item.cpu_cost,
                item.gpu_cost,
                item.mem_cost,
                item.cost,
                receipt.currency,
            ]
            for item in receipt.items.all().iterator(chunk_size=5000)
        ),
    )


def paid_csv() -> str:
    return _csv(
        PAID_CSV_COLUMNS,
        (
            [
                r.pk,
                r.username,
                r.cluster,
                r.job_count,
                r.total,
                r.currency,
                _iso(r.created_at),
                _iso(r.paid_at),
                r.paid_by,
            ]
            for r in Receipt.objects.filter(status=Receipt.Status.PAID).order_by("paid_at")
        ),
    )


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


# --- the audit log (listing only; userportal.audit writes it) --------------------------------
AUDIT_CSV_COLUMNS = ["seq", "timestamp", "actor", "ip", "user_agent", "method", "path", "action", "target", "status"]
AUDIT_CSV_COLUMNS += ["extra", "prev_hash", "hash"]


def audit_entries(
    *, action: str = "", actor: str = "", target: str = "", status: str = "", since: date | None = None
) -> QuerySet[AuditEntry]:
    """Audit entries, newest first, filtered (prefix match on the action: ``billing.`` finds all of billing's)."""
    entries = AuditEntry.objects.all().order_by("-seq")
    if action:
        entries = entries.filter(action__startswith=action)
    if actor:
        entries = entries.filter(actor=actor)
    if target:
        entries = entries.filter(target__icontains=target)
    if status:
        entries = entries.filter(status=status)
    if since:
        entries = entries.filter(timestamp__gte=datetime.combine(since, time.min, tzinfo=UTC))
    return entries


def audit_csv(entries: Iterable[AuditEntry]) -> str:
    return _csv(
        AUDIT_CSV_COLUMNS,
        (
            [
                e.seq,
                _iso(e.timestamp),
                e.actor,
                e.ip or "",
                e.user_agent,
                e.method,
                e.path,
                e.action,
                e.target,
                e.status,
                json.dumps(e.extra, sort_keys=True),
                e.prev_hash,
                e.hash,
            ]
            for e in entries
        ),
    )
