"""The staff timeline: GPUs reserved by priorities per type over time, against the cluster's GPUs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from priorities.models import PriorityRequest, Status
from priorities.policy import cluster_gpus


def gpu_timeline(
    cluster: str, *, at: datetime | None = None, days_before: int = 30, days_after: int = 60
) -> dict[str, Any]:
    """Reserved GPUs per type over time (accepted, active and past priorities) and the cluster's GPUs."""
    at = at or timezone.now()
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
