"""Job graphs of whole nodes: node_exporter's network and disks, and the job's estimated power (domain 4.3)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from jobstats.graphs.common import MAX_NODES, JobBuilder, JobScope, range_by_tag, sorted_by
from userportal.figures import Figure, figure, layout, no_data, trace
from userportal.prometheus import MetricsSession, Series, finite
from userportal.promql import job_selector, node_name, node_selector, union
from userportal.windows import Window, rate_window


def instances(nodes: Sequence[str], template: str) -> list[str]:
    return [template.replace("{node}", node) for node in nodes]


def _node_scope(scope: JobScope) -> list[str] | None:
    if not scope.nodes or len(scope.nodes) > MAX_NODES:
        return None
    return instances(scope.nodes, settings.JOBSTATS_NODE_INSTANCE)


def node_pair(
    metric_in: str,
    metric_out: str,
    title: str | Promise,
    unit: str,
    scale: float,
    *,
    by_device: bool,
    keep: Callable[[str], bool] = lambda device: True,
    rate: bool = True,
) -> JobBuilder:
    def build(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
        targets = _node_scope(scope)
        if targets is None:
            return no_data(str(title), _("Node graphs are shown for jobs on 1 to %(max)d nodes.") % {"max": MAX_NODES})
        by = "instance, device" if by_device else "instance"
        rw = rate_window(window.step)

        def expr(metric: str) -> str:
            sel = node_selector(metric, targets)
            return f"sum by ({by}) (rate({sel}[{rw}]))" if rate else f"sum by ({by}) ({sel})"

        result = range_by_tag(session, union({"in": expr(metric_in), "out": expr(metric_out)}), window)
        traces = []
        for tag, negative, word in (("in", False, _("in")), ("out", True, _("out"))):
            for s in sorted_by(result.get(tag, []), "instance", "device"):
                device = s.labels.get("device", "")
                if by_device and not keep(device):
                    continue
                name = " ".join(part for part in (node_name(s.labels.get("instance", "")), device, str(word)) if part)
                traces.append(trace(s, name, scale=scale, unit=unit, negative=negative))
        return figure(traces, layout(str(title), f"{unit} " + _("(in up, out down)")), unit=unit)

    return build


DISK = re.compile(r"^(nvme\d+n\d+|sd[a-z]+|vd[a-z]+)$")


def job_disk_used(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    title = _("Local disk used (whole node)")
    targets = _node_scope(scope)
    if targets is None:
        return no_data(title, _("Node graphs are shown for jobs on 1 to %(max)d nodes.") % {"max": MAX_NODES})
    mount = settings.JOBSTATS_LOCAL_SCRATCH
    size = node_selector("node_filesystem_size_bytes", targets, mountpoint=mount)
    avail = node_selector("node_filesystem_avail_bytes", targets, mountpoint=mount)
    result = range_by_tag(
        session,
        union({"used": f"max by (instance) ({size} - {avail})", "size": f"max by (instance) ({size})"}),
        window,
    )
    traces = [
        trace(s, node_name(s.labels.get("instance", "")), scale=1e-9, unit="GB")
        for s in sorted_by(result.get("used", []), "instance")
    ]
    traces += [
        trace(
            s,
            _("%(node)s size") % {"node": node_name(s.labels.get("instance", ""))},
            scale=1e-9,
            unit="GB",
            dash="dash",
        )
        for s in sorted_by(result.get("size", []), "instance")
    ]
    return figure(traces, layout(title, "GB"), unit="GB")


@dataclass(frozen=True)
class NodePower:
    node: str
    timestamps: list[float]
    watts: list[float | None]


def node_power(session: MetricsSession, scope: JobScope, window: Window) -> list[NodePower]:
    """The job's estimated power on each node (domain 4.3), as series."""
    nodes = list(scope.nodes)
    if not nodes or len(nodes) > MAX_NODES:
        return []
    # Each exporter names a node its own way (nc1-oob, nc1:9100, nc1:9445): map them back.
    names: dict[str, str] = {}
    for template in (
        settings.JOBSTATS_POWER_INSTANCE,
        settings.JOBSTATS_NODE_INSTANCE,
        settings.JOBSTATS_NODE_GPU_POWER_INSTANCE,
    ):
        names.update(zip(instances(nodes, template), nodes, strict=True))
    power = node_selector(settings.JOBSTATS_POWER_METRIC, instances(nodes, settings.JOBSTATS_POWER_INSTANCE))
    cores = node_selector("node_cpu_seconds_total", instances(nodes, settings.JOBSTATS_NODE_INSTANCE), mode="idle")
    parts = {"chassis": f"max by (instance) ({power})", "cores": f"count by (instance) ({cores})"}
    if scope.gpus:
        gpu_sel = node_selector(
            "nvidia_gpu_power_usage_milliwatts", instances(nodes, settings.JOBSTATS_NODE_GPU_POWER_INSTANCE)
        )
        parts["node_gpu_w"] = f"sum by (instance) ({gpu_sel}) / 1000"
        parts["node_gpus"] = f"count by (instance) ({gpu_sel})"
        parts["job_gpu_w"] = f"sum by (instance) ({job_selector('slurm_job_power_gpu', scope.job_ids)}) / 1000"
    result = range_by_tag(session, union(parts), window)

    def per_node(tag: str) -> dict[str, dict[float, float]]:
        found: dict[str, dict[float, float]] = {}
        for s in result.get(tag, []):
            instance = s.labels.get("instance", "")
            values = {t: v for t, v in zip(s.timestamps, s.values, strict=False) if finite(v) is not None}
            found.setdefault(names.get(instance, node_name(instance)), {}).update(values)
        return found

    chassis, node_cores = per_node("chassis"), per_node("cores")
    node_gpu_w, node_gpus, job_gpu_w = per_node("node_gpu_w"), per_node("node_gpus"), per_node("job_gpu_w")
    cores_here = scope.cpus / len(nodes)
    gpus_here = scope.gpus / len(nodes)
    estimates = []
    for node in nodes:
        times = sorted(chassis.get(node, {}))
        watts: list[float | None] = []
        for t in times:
            total = chassis[node][t]
            if scope.gpus:
                all_gpu_w = node_gpu_w.get(node, {}).get(t)
                count = node_gpus.get(node, {}).get(t)
                own = job_gpu_w.get(node, {}).get(t, 0.0)
                if all_gpu_w is None or not count:
                    watts.append(None)
                    continue
                watts.append(max(total - all_gpu_w, 0.0) * min(gpus_here / count, 1.0) + own)
            else:
                count = node_cores.get(node, {}).get(t)
                watts.append(total * min(cores_here / count, 1.0) if count else None)
        estimates.append(NodePower(node, times, watts))
    return estimates


def job_power(session: MetricsSession, scope: JobScope, window: Window) -> Figure:
    estimates = node_power(session, scope, window)
    traces = [
        trace(
            Series({}, p.timestamps, [w if w is not None else float("nan") for w in p.watts]),
            p.node,
            stack=True,
            unit="W",
        )
        for p in estimates
    ]
    return figure(traces, layout(_("Estimated power of the job, per node"), "W"), unit="W")
