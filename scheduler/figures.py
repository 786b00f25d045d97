"""The scheduler page's bar charts (figure JSON in the userportal.figures shape)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from scheduler.analytics import SIZES, PartitionStats
from userportal.figures import CONFIG, Figure, no_data, rounded


def _bars(title: str, y_title: str, traces: list[dict[str, Any]], summary: str) -> Figure:
    if not any(value is not None for item in traces for value in item["y"]):
        return no_data(title, _("No job started in this period."))
    fig_layout = {
        "title": {"text": title},
        "xaxis": {"title": {"text": _("Partition")}, "type": "category"},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "barmode": "group",
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    }
    return {"data": traces, "layout": fig_layout, "config": CONFIG, "summary": summary}


def _bar(name: str, stats: list[PartitionStats], values: list[float | None]) -> dict[str, Any]:
    return {"type": "bar", "name": name, "x": [entry.partition for entry in stats], "y": [rounded(v) for v in values]}


def wait_by_size(stats: list[PartitionStats]) -> Figure:
    traces = []
    for _limit, label in SIZES:
        values = [entry.size_medians_h().get(label) for entry in stats]
        if any(value is not None for value in values):
            traces.append(_bar(_("%(size)s cores") % {"size": label}, stats, values))
    return _bars(_("Median wait by partition and job size"), _("hours"), traces, _("Median wait in hours."))


def runtime_ratio(stats: list[PartitionStats]) -> Figure:
    traces = [_bar(_("median run time / time limit"), stats, [entry.ratio_median for entry in stats])]
    return _bars(_("Run time against the time limit"), _("ratio"), traces, _("Median ratio of ended jobs."))


def timeouts(stats: list[PartitionStats]) -> Figure:
    traces = [_bar(_("time-out ratio"), stats, [entry.timeout_ratio for entry in stats])]
    return _bars(_("Time-outs"), _("ratio"), traces, _("Share of ended jobs that hit their time limit."))


def levelfs(stats: list[PartitionStats]) -> Figure:
    traces = [_bar(_("mean LevelFS at start"), stats, [entry.levelfs_mean for entry in stats])]
    return _bars(
        _("Fair share at start (LevelFS)"), "LevelFS", traces, _("Below 1: the account had used more than its share.")
    )


GRAPHS = {"wait": wait_by_size, "runtime": runtime_ratio, "timeouts": timeouts, "levelfs": levelfs}
