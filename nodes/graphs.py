"""One node's graphs (figure JSON, userportal.figures): node_exporter's CPU, memory, network and
disks, slurm-job-exporter's GPUs, and the timeline of the jobs on the node from the accounting database.

Series are selected by the node's ``instance`` label, built from its Slurm name with
JOBSTATS_NODE_INSTANCE (``{node}:9100``), the convention of jobstats' node graphs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from nodes.accounting import NodeJob
from userportal.figures import CONFIG, Figure, figure, iso, layout, no_data, trace
from userportal.prometheus import MetricsSession, Series
from userportal.promql import TAG, by_tag, node_selector, quote, selector, union
from userportal.windows import Window, rate_window

GIB = 1024**3
MIB = 1024**2


def instance(node: str) -> str:
    return settings.JOBSTATS_NODE_INSTANCE.replace("{node}", node)


def busy_cores(instances: list[str], rw: str) -> str:
    """Cores busy per instance: all cores minus the idle rate (node_cpu_seconds_total has no "busy" mode)."""
    idle = node_selector("node_cpu_seconds_total", instances, mode="idle")
    return f"count by (instance) ({idle}) - sum by (instance) (rate({idle}[{rw}]))"


def _ranged(session: MetricsSession, parts: dict[str, str], window: Window) -> dict[str, list[Series]]:
    return by_tag(session.query_range(union(parts), window))


def cpu(session: MetricsSession, node: str, window: Window) -> Figure:
    target = [instance(node)]
    idle = node_selector("node_cpu_seconds_total", target, mode="idle")
    result = _ranged(
        session,
        {"used": busy_cores(target, rate_window(window.step)), "total": f"count by (instance) ({idle})"},
        window,
    )
    traces = [trace(s, _("cores used"), unit=_("cores")) for s in result.get("used", [])]
    traces += [trace(s, _("cores installed"), unit=_("cores"), dash="dash") for s in result.get("total", [])]
    return figure(traces, layout(_("CPU"), _("cores")), unit=_("cores"))


def memory(session: MetricsSession, node: str, window: Window) -> Figure:
    target = [instance(node)]
    total = node_selector("node_memory_MemTotal_bytes", target)
    avail = node_selector("node_memory_MemAvailable_bytes", target)
    result = _ranged(session, {"used": f"{total} - {avail}", "total": total}, window)
    traces = [trace(s, _("used"), scale=1 / GIB, unit="GiB") for s in result.get("used", [])]
    traces += [trace(s, _("installed"), scale=1 / GIB, unit="GiB", dash="dash") for s in result.get("total", [])]
    return figure(traces, layout(_("Memory"), "GiB"), unit="GiB")


def _in_out(metric_in: str, metric_out: str, title: str, by: str) -> Callable[[MetricsSession, str, Window], Figure]:
    def build(session: MetricsSession, node: str, window: Window) -> Figure:
        rw = rate_window(window.step)
        target = [instance(node)]
        parts = {
            tag: f"sum by ({by}) (rate({node_selector(metric, target)}[{rw}]))"
            for tag, metric in (("in", metric_in), ("out", metric_out))
        }
        result = _ranged(session, parts, window)
        traces = [
            trace(s, f"{s.labels.get(by, '')} {word}".strip(), scale=1 / MIB, unit="MiB/s", negative=tag == "out")
            for tag, word in (("in", _("in")), ("out", _("out")))
            for s in sorted(result.get(tag, []), key=lambda s: s.labels.get(by, ""))
            if s.labels.get(by) != "lo"
        ]
        return figure(traces, layout(title, _("MiB/s (in up, out down)")), unit="MiB/s")

    return build


def network(session: MetricsSession, node: str, window: Window) -> Figure:
    build = _in_out("node_network_receive_bytes_total", "node_network_transmit_bytes_total", _("Network"), "device")
    return build(session, node, window)


def disk(session: MetricsSession, node: str, window: Window) -> Figure:
    build = _in_out("node_disk_read_bytes_total", "node_disk_written_bytes_total", _("Disk I/O"), "device")
    return build(session, node, window)


def gpu(session: MetricsSession, node: str, window: Window) -> Figure:
    """GPU use of the jobs on the node: slurm-job-exporter's series of any port of the node's host."""
    host = selector("slurm_job_utilization_gpu").rstrip("}")
    pattern = quote(re.escape(node) + r"(\..*)?(:[0-9]+)?")
    sel = f"{host}{',' if not host.endswith('{') else ''}instance=~{pattern}}}"
    result = _ranged(session, {"gpu": f"sum by (gpu) ({sel})"}, window)
    traces = [
        trace(s, _("GPU %(gpu)s") % {"gpu": s.labels.get("gpu", "")}, unit="%")
        for s in sorted(result.get("gpu", []), key=lambda s: s.labels.get("gpu", ""))
    ]
    return figure(traces, layout(_("GPU use"), "%", y_range=(0, 100)), unit="%")


def timeline(jobs: list[NodeJob], window: Window, resource: str) -> Figure:
    """A Gantt of the jobs on the node: one bar per job, from its start (or the window's) to its end (or now)."""
    title = _("Jobs on the node (CPUs)") if resource == "cpus" else _("Jobs on the node (GPUs)")
    shown = [job for job in jobs if getattr(job, resource) > 0]
    if not shown:
        return no_data(title, _("No job ran on this node in this period."))
    users = sorted({job.user for job in shown})
    traces = []
    for user in users:
        mine = [job for job in shown if job.user == user]
        starts = [max(job.start, window.start) for job in mine]
        ends = [min(job.end or window.end, window.end) for job in mine]
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": user,
                "y": [f"{job.job_id} ({getattr(job, resource)})" for job in mine],
                "base": [iso(start) for start in starts],
                "x": [(end - start) * 1000 for start, end in zip(starts, ends, strict=True)],
                "hovertemplate": "%{y}<extra>%{fullData.name}</extra>",
            }
        )
    fig_layout = layout(title, _("job (%(resource)s)") % {"resource": resource.upper()})
    fig_layout["yaxis"] = {"title": fig_layout["yaxis"]["title"], "autorange": "reversed", "type": "category"}
    fig_layout["barmode"] = "overlay"
    fig_layout["hovermode"] = "closest"
    summary = _("%(count)d jobs of %(users)d users") % {"count": len(shown), "users": len(users)}
    return {"data": traces, "layout": fig_layout, "config": CONFIG, "summary": summary}


@dataclass(frozen=True)
class MetricGraph:
    name: str
    title: str | Promise
    draw: Callable[[MetricsSession, str, Window], Figure]


METRIC_GRAPHS = (
    MetricGraph("cpu", gettext_lazy("CPU"), cpu),
    MetricGraph("memory", gettext_lazy("Memory"), memory),
    MetricGraph("network", gettext_lazy("Network"), network),
    MetricGraph("disk", gettext_lazy("Disk I/O"), disk),
    MetricGraph("gpu", gettext_lazy("GPU use"), gpu),
)
TIMELINES = {"jobs_cpus": ("cpus", gettext_lazy("Jobs (CPUs)")), "jobs_gpus": ("gpus", gettext_lazy("Jobs (GPUs)"))}
GRAPH_NAMES = {graph.name for graph in METRIC_GRAPHS} | set(TIMELINES)


def sparklines(session: MetricsSession, nodes: list[str], window: Window) -> dict[str, str]:
    """Each node's busy-core fraction over ``window`` as SVG polyline points (100 × 20 box)."""
    if not nodes:
        return {}
    targets = {instance(node): node for node in nodes}
    idle = node_selector("node_cpu_seconds_total", list(targets), mode="idle")
    expr = f"({busy_cores(list(targets), rate_window(window.step))}) / count by (instance) ({idle})"
    lines = {}
    for series in session.query_range(expr, window):
        node = targets.get(series.labels.get("instance", ""))
        if node is None or not series.timestamps:
            continue
        span = max(window.end - window.first, 1)
        points = [
            f"{(t - window.first) * 100 / span:.1f},{20 - 20 * min(max(v, 0.0), 1.0):.1f}"
            for t, v in zip(series.timestamps, series.values, strict=False)
            if v == v  # NaN is not a point
        ]
        lines[node] = " ".join(points)
    return lines


def scratch(session: MetricsSession, nodes: list[str]) -> dict[str, tuple[float, float]]:
    """Each node's local scratch (JOBSTATS_LOCAL_SCRATCH) now: (used, size) in GB."""
    if not nodes:
        return {}
    targets = {instance(node): node for node in nodes}
    mount = settings.JOBSTATS_LOCAL_SCRATCH
    size = selector("node_filesystem_size_bytes", {"mountpoint": mount}, regex={"instance": list(targets)})
    avail = selector("node_filesystem_avail_bytes", {"mountpoint": mount}, regex={"instance": list(targets)})
    parts = {"used": f"max by (instance) ({size} - {avail})", "size": f"max by (instance) ({size})"}
    found: dict[str, dict[str, float]] = {}
    for sample in session.query(union(parts)):
        node = targets.get(sample.labels.get("instance", ""))
        if node is not None:
            found.setdefault(node, {})[sample.labels.get(TAG, "")] = sample.value / 1e9
    return {node: (values.get("used", 0.0), values["size"]) for node, values in found.items() if "size" in values}
