"""Plotly figure JSON shared by the feature apps, and the one "no data" contract.

A figure is ``{"data": [trace, ...], "layout": {...}, "config": {...}, "summary": "..."}``;
``summary`` is a plain-text description for the page's <figcaption> (screen readers). No data is
the same shape with ``"data": []``, ``"no_data": true`` and a ``reason``, answered with status 200:
an empty result is not an error. x values are ISO-8601 UTC strings, and no trace has more than
MAX_POINTS points. This is the contract of jobstats' graphs (domain 8.1), for the other apps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from statistics import fmean
from typing import Any

from django.utils.translation import gettext as _

from userportal.prometheus import Series, finite
from userportal.windows import MAX_POINTS

Figure = dict[str, Any]
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def iso(timestamp: float) -> str:
    """Epoch seconds to an ISO-8601 UTC string; Plotly draws it as UTC wall time."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rounded(value: float | None, digits: int = 4) -> float | None:
    value = finite(value)
    if value is None:
        return None
    return float(f"{value:.{digits}g}")


def thin(
    timestamps: Sequence[float], values: Sequence[float], max_points: int = MAX_POINTS
) -> tuple[list[float], list[float]]:
    """At most ``max_points`` points: every k-th one, always keeping the last."""
    if len(timestamps) <= max_points:
        return list(timestamps), list(values)
    stride = math.ceil(len(timestamps) / max_points)
    keep = list(range(0, len(timestamps), stride))
    if keep[-1] != len(timestamps) - 1:
        keep[-1] = len(timestamps) - 1
    return [timestamps[i] for i in keep], [values[i] for i in keep]


def hover(unit: str = "") -> str:
    return "%{y:.3~s}" + (f" {unit}" if unit else "") + "<extra>%{fullData.name}</extra>"


def trace(
    series: Series,
    name: str,
    *,
    scale: float = 1.0,
    unit: str = "",
    stack: bool = False,
    dash: str | None = None,
    yaxis: str | None = None,
    negative: bool = False,
) -> dict[str, Any]:
    """A time-series trace with UTC x values and at most MAX_POINTS points."""
    sign = -1.0 if negative else 1.0
    xs, ys = thin(series.timestamps, series.values)
    item: dict[str, Any] = {
        "x": [iso(t) for t in xs],
        "y": [rounded(v * scale * sign) if finite(v) is not None else None for v in ys],
        "type": "scatter",
        "mode": "lines",
        "name": str(name),
        "hovertemplate": hover(unit),
    }
    if stack:
        item["stackgroup"] = "one"
    if dash:
        item["line"] = {"dash": dash}
    if yaxis:
        item["yaxis"] = yaxis
    return item


def constant_trace(
    xs: Sequence[float], value: float, name: str, *, unit: str = "", dash: str = "dash"
) -> dict[str, Any]:
    """A flat line over the span of ``xs`` (an allocation, a quota)."""
    return {
        "x": [iso(xs[0]), iso(xs[-1])] if xs else [],
        "y": [rounded(value), rounded(value)] if xs else [],
        "type": "scatter",
        "mode": "lines",
        "name": str(name),
        "line": {"dash": dash},
        "hovertemplate": hover(unit),
    }


def layout(
    title: str, y_title: str, *, y_range: Sequence[float] | None = None, y2_title: str | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "title": {"text": str(title)},
        "xaxis": {"type": "date", "title": {"text": _("Time (UTC)")}},
        "yaxis": {"title": {"text": str(y_title)}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        "hovermode": "x unified",
    }
    if y_range is not None:
        result["yaxis"]["range"] = [rounded(v) for v in y_range]
    if y2_title:
        result["yaxis2"] = {"title": {"text": str(y2_title)}, "overlaying": "y", "side": "right", "rangemode": "tozero"}
    return result


def _describe(item: dict[str, Any], unit: str) -> str | None:
    values = [abs(v) for v in item.get("y", []) if v is not None]
    if not values:
        return None
    suffix = f" {unit}" if unit else ""
    return _("%(name)s: mean %(mean)s, peak %(peak)s") % {
        "name": item.get("name", ""),
        "mean": f"{fmean(values):.3g}{suffix}",
        "peak": f"{max(values):.3g}{suffix}",
    }


def figure(traces: list[dict[str, Any]], fig_layout: dict[str, Any], *, unit: str, reason: str = "") -> Figure:
    """The figure, or the "no data" figure when no trace has a value."""
    if not any(any(v is not None for v in item.get("y", [])) for item in traces):
        return no_data(fig_layout.get("title", {}).get("text", ""), reason or _("No data for this period."))
    lines = [text for item in traces[:8] if (text := _describe(item, unit))]
    if len(traces) > 8:
        lines.append(_("and %(count)d more series") % {"count": len(traces) - 8})
    return {"data": traces, "layout": fig_layout, "config": CONFIG, "summary": "; ".join(lines)}


def no_data(title: str, reason: str) -> Figure:
    """The one "no data" answer of every graph: an empty figure with the reason shown on it."""
    return {
        "data": [],
        "layout": {
            "title": {"text": str(title)},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "annotations": [
                {"text": str(reason), "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
            ],
            "margin": {"l": 20, "r": 20, "t": 40, "b": 20},
        },
        "config": CONFIG,
        "summary": str(reason),
        "no_data": True,
        "reason": str(reason),
    }
